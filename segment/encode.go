package segment

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kbin"
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
	return BuildBatchAs(records, n, codec, ts, NoProducer)
}

// BatchProducer is the producer a batch is written for: id, epoch and first
// sequence, and whether the batch is transactional or a control batch.
type BatchProducer struct {
	ID            int64
	Epoch         int16
	Sequence      int32
	Transactional bool
	Control       bool
}

// NoProducer is a batch of no producer (id, epoch and sequence -1).
var NoProducer = BatchProducer{ID: -1, Epoch: -1, Sequence: -1}

// BuildBatchAs is BuildBatch for a producer.
func BuildBatchAs(records []byte, n int, codec int, ts int64, p BatchProducer) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records))
	be := binary.BigEndian
	attrs := uint16(codec)
	if p.Transactional {
		attrs |= 0x10
	}
	if p.Control {
		attrs |= 0x20
	}
	be.PutUint32(b[8:], uint32(BatchHeaderSize-12+len(records)))
	be.PutUint32(b[12:], 0xffffffff) // partition leader epoch, set on append
	b[16] = 2
	be.PutUint16(b[21:], attrs)
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], uint64(p.ID))
	be.PutUint16(b[51:], uint16(p.Epoch))
	be.PutUint32(b[53:], uint32(p.Sequence))
	be.PutUint32(b[57:], uint32(n))
	b = append(b, records...)
	setCRC(b)
	return b
}

// Control record types (the key of a control batch's record).
const (
	ControlAbort  = 0
	ControlCommit = 1
)

// BuildMarker returns a transaction marker: the control batch that ends a
// producer's transaction in a partition, committed or aborted (Kafka's
// EndTxnMarker, written by the transaction coordinator).
func BuildMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	key := kmsg.NewControlRecordKey()
	key.Type = ControlAbort
	if commit {
		key.Type = ControlCommit
	}
	val := kmsg.NewEndTxnMarker()
	val.CoordinatorEpoch = coordinatorEpoch
	recs := AppendRecords(nil, []Record{{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}})
	return BuildBatchAs(recs, 1, CodecNone, ts, BatchProducer{ID: producerID, Epoch: epoch, Sequence: -1, Transactional: true, Control: true})
}

// ControlType returns the type of a control batch (ControlAbort,
// ControlCommit, or another Kafka control type): the key of its first
// record. ok is false if batch is not a readable control batch.
func ControlType(batch []byte) (typ int16, ok bool) {
	h, err := ParseHeader(batch)
	if err != nil || !h.Control() || h.Codec() != CodecNone || h.RecordCount < 1 || h.Size() < BatchHeaderSize || h.Size() > len(batch) {
		return 0, false
	}
	// The first record, up to its key: length, attributes, timestamp and
	// offset deltas, key.
	r := kbin.Reader{Src: batch[BatchHeaderSize:h.Size()]}
	r.Varint()
	r.Int8()
	r.Varlong()
	r.Varint()
	k := r.VarintBytes()
	var key kmsg.ControlRecordKey
	if !r.Ok() || key.ReadFrom(k) != nil {
		return 0, false
	}
	return int16(key.Type), true
}
