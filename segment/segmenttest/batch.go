package segmenttest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record to put in a batch.
type Record struct {
	Key, Value []byte
	Headers    []kmsg.Header
	// TimestampDelta is added to the batch's base timestamp.
	TimestampDelta int64
}

// Batch describes a RecordBatch v2 to build.
type Batch struct {
	BaseTimestamp int64
	Codec         int // segment.CodecNone ... segment.CodecZstd
	// Idempotent batches carry ProducerID, ProducerEpoch and BaseSequence;
	// others carry Kafka's "no producer" values (-1, -1, -1).
	Idempotent    bool
	Transactional bool // an idempotent batch of a transaction
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Records       []Record
}

// Build encodes the batch as a producer would: base offset 0, leader epoch
// -1 (the broker assigns both), valid CRC-32C.
func (b Batch) Build() []byte {
	var recs []byte
	maxTs := b.BaseTimestamp
	for i, r := range b.Records {
		kr := kmsg.Record{
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		if r.Key == nil {
			kr.Key = nil
		}
		body := kr.AppendTo(nil)
		// kmsg writes Length as given; compute it from the encoded body.
		kr.Length = int32(len(body) - varintLen(0))
		recs = kr.AppendTo(recs)
		maxTs = max(maxTs, b.BaseTimestamp+r.TimestampDelta)
	}
	recs = compress(b.Codec, recs)
	out := make([]byte, 61, 61+len(recs))
	be := binary.BigEndian
	be.PutUint64(out[0:], 0)
	be.PutUint32(out[8:], uint32(61-12+len(recs)))
	be.PutUint32(out[12:], 0xffffffff)
	out[16] = 2
	attrs := uint16(b.Codec)
	if b.Transactional {
		attrs |= 0x10
	}
	be.PutUint16(out[21:], attrs)
	lastDelta := len(b.Records) - 1
	if lastDelta < 0 {
		lastDelta = 0
	}
	be.PutUint32(out[23:], uint32(lastDelta))
	be.PutUint64(out[27:], uint64(b.BaseTimestamp))
	be.PutUint64(out[35:], uint64(maxTs))
	pid, epoch, seq := b.ProducerID, b.ProducerEpoch, b.BaseSequence
	if !b.Idempotent {
		pid, epoch, seq = -1, -1, -1
	}
	be.PutUint64(out[43:], uint64(pid))
	be.PutUint16(out[51:], uint16(epoch))
	be.PutUint32(out[53:], uint32(seq))
	be.PutUint32(out[57:], uint32(len(b.Records)))
	out = append(out, recs...)
	be.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func varintLen(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}

// Values builds an uncompressed batch of records with the given values,
// all at timestamp ts.
func Values(ts int64, values ...string) []byte {
	b := Batch{BaseTimestamp: ts}
	for _, v := range values {
		b.Records = append(b.Records, Record{Value: []byte(v)})
	}
	return b.Build()
}

// Sized builds an uncompressed one-record batch of size bytes, or, where
// varint lengths make that size impossible, one byte more.
func Sized(ts int64, size int) []byte {
	const overhead = 61 + 7 // header plus a one-record frame with a small value
	build := func(v int) []byte {
		return Batch{BaseTimestamp: ts, Records: []Record{{Value: bytes.Repeat([]byte{'x'}, v)}}}.Build()
	}
	v := max(size-overhead, 0)
	b := build(v)
	for len(b) > size && v > 0 {
		v--
		b = build(v)
	}
	for len(b) < size {
		v++
		b = build(v)
	}
	return b
}

func compress(codec int, src []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case 0:
		return src
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case 2:
		return s2.EncodeSnappy(nil, src)
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case 4:
		w, _ := zstd.NewWriter(&buf)
		w.Write(src)
		w.Close()
	}
	return buf.Bytes()
}

// FixCRC recomputes a batch's CRC-32C after a test changed its bytes.
func FixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
