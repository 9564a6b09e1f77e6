package segment

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendRecords appends recs to dst as the records section of a batch:
// offset deltas 0..n-1 and timestamp deltas 0 (Offset and Timestamp of the
// records are ignored).
func AppendRecords(dst []byte, recs []Record) []byte {
	for i, r := range recs {
		kr := kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value, Headers: r.Headers}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // the Length varint of 0 is one byte
		dst = kr.AppendTo(dst)
	}
	return dst
}

// BuildBatch returns a RecordBatch v2 at base offset 0 around a records
// section of n records (as AppendRecords writes it, then compressed with
// codec), all at timestamp ts, with no producer id. Any Kafka consumer can
// read it.
func BuildBatch(records []byte, n int, codec int, ts int64) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(BatchHeaderSize-12+len(records)))
	be.PutUint32(b[12:], 0xffffffff) // partition leader epoch, set on append
	b[16] = 2
	be.PutUint16(b[21:], uint16(codec))
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], 0xffff)     // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff) // base sequence -1
	be.PutUint32(b[57:], uint32(n))
	b = append(b, records...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}
