package segment

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one decoded record of a batch.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil is a null key
	Value     []byte // nil is a null value (a tombstone)
	Headers   []kmsg.Header
}

// DecodeRecords decodes the records of one whole batch, decompressing them
// into at most limit bytes. The batch's record count must match.
func DecodeRecords(batch []byte, limit int) ([]Record, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return nil, err
	}
	if h.Size() != len(batch) {
		return nil, fmt.Errorf("%w: batchLength %d does not match %d bytes", ErrCorruptBatch, h.Length, len(batch))
	}
	data, err := Decompress(h.Codec(), batch[BatchHeaderSize:], limit)
	if err != nil {
		return nil, err
	}
	if h.RecordCount < 0 || int(h.RecordCount) > len(data) {
		return nil, fmt.Errorf("%w: record count %d cannot fit in %d bytes", ErrInvalidBatch, h.RecordCount, len(data))
	}
	out := make([]Record, 0, h.RecordCount)
	for i := range int(h.RecordCount) {
		length, n := binary.Varint(data)
		if n <= 0 || length < 0 || length > int64(len(data)-n) {
			return out, fmt.Errorf("%w: record %d: bad length", ErrInvalidBatch, i)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(data[:n+int(length)]); err != nil {
			return out, fmt.Errorf("%w: record %d: %v", ErrInvalidBatch, i, err)
		}
		ts := h.BaseTimestamp + kr.TimestampDelta64
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		out = append(out, Record{Offset: h.BaseOffset + int64(kr.OffsetDelta), Timestamp: ts, Key: kr.Key, Value: kr.Value, Headers: kr.Headers})
		data = data[n+int(length):]
	}
	if len(data) != 0 {
		return out, fmt.Errorf("%w: %d bytes after the last of %d records", ErrInvalidBatch, len(data), h.RecordCount)
	}
	return out, nil
}
