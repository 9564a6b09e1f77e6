package eventlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// zstdEncoder is shared; EncodeAll is safe for concurrent use.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// buildBatch encodes events as one RecordBatch v2: one record per event,
// all at timestamp ts, the records section zstd-compressed when larger
// than compressAbove bytes (0: never). Any Kafka consumer can read it.
func buildBatch(events []Event, ts int64, compressAbove int) []byte {
	var recs []byte
	for i, e := range events {
		key := []byte(e.Key())
		if len(key) == 0 {
			key = nil
		}
		r := kmsg.Record{OffsetDelta: int32(i), Key: key, Value: Encode(e)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the Length varint of 0 is one byte
		recs = r.AppendTo(recs)
	}
	codec := segment.CodecNone
	if compressAbove > 0 && len(recs) > compressAbove {
		recs = zstdEncoder.EncodeAll(recs, nil)
		codec = segment.CodecZstd
	}
	b := make([]byte, segment.BatchHeaderSize, segment.BatchHeaderSize+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(segment.BatchHeaderSize-12+len(recs)))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint16(b[21:], uint16(codec))
	be.PutUint32(b[23:], uint32(len(events)-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], 0xffff)     // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff) // base sequence -1
	be.PutUint32(b[57:], uint32(len(events)))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}

// maxBatchEvents bounds the decompressed size of one metadata batch.
const maxDecodedBatch = 64 << 20

// decodeBatch returns the events of one stored batch with their offsets.
func decodeBatch(batch []byte) ([]Event, []int64, error) {
	recs, err := segment.DecodeRecords(batch, maxDecodedBatch)
	if err != nil {
		h, _ := segment.ParseHeader(batch)
		return nil, nil, fmt.Errorf("eventlog: batch at offset %d: %w", h.BaseOffset, err)
	}
	events := make([]Event, len(recs))
	offsets := make([]int64, len(recs))
	for i, r := range recs {
		e, err := Decode(r.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("eventlog: event at offset %d: %w", r.Offset, err)
		}
		events[i], offsets[i] = e, r.Offset
	}
	return events, offsets, nil
}
