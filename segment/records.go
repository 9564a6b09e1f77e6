package segment

import (
	"encoding/binary"
	"fmt"
	"runtime"

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

// MaxRecordsSection bounds what a batch's records decompress to when they
// are checked (CheckRecords): far above what clients batch (they bound
// batches before compression, at about a megabyte), so that a small batch
// that would decompress without end is refused instead.
const MaxRecordsSection = 64 << 20

// decompressing holds a slot for each records section CheckRecords is
// decompressing: as many as the CPUs that can do it, at most 8.
var decompressing = make(chan struct{}, max(2, min(runtime.GOMAXPROCS(0), 8)))

// CheckRecords checks the records section of a batch that ValidateBatch
// accepted, as a Kafka broker does before it appends a produced batch: it
// decompresses (up to MaxRecordsSection), and every record must be whole
// and well-formed (lengths that fit, a null or present key and value,
// headers with keys), their offset deltas 0, 1, 2, ..., as many as the
// header counts (at least one, and lastOffsetDelta+1), nothing after them.
// A section that does not decompress is ErrCorruptBatch, anything else
// ErrInvalidBatch. It reads the records in place, allocating only to
// decompress.
func CheckRecords(batch []byte, h *BatchHeader) error {
	if h.RecordCount <= 0 || int64(h.LastOffsetDelta) != int64(h.RecordCount)-1 {
		return fmt.Errorf("%w: %d records with lastOffsetDelta %d: want at least one, and lastOffsetDelta one less", ErrInvalidBatch, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Codec() != CodecNone {
		// At most a few records sections are decompressed at once, each
		// up to MaxRecordsSection: the memory checks take stays bounded
		// however many produce requests come in.
		decompressing <- struct{}{}
		defer func() { <-decompressing }()
	}
	data, err := Decompress(h.Codec(), batch[BatchHeaderSize:], MaxRecordsSection)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	rd := recordReader{b: data, ok: true}
	for i := range h.RecordCount {
		length := rd.varint()
		if !rd.ok || length < 1 || length > int64(len(rd.b)) {
			return fmt.Errorf("%w: record %d: bad length", ErrInvalidBatch, i)
		}
		if err := checkRecord(rd.b[:length], i); err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrInvalidBatch, i, err)
		}
		rd.b = rd.b[length:]
	}
	if len(rd.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrInvalidBatch, len(rd.b), h.RecordCount)
	}
	return nil
}

// checkRecord checks one record's body (after its length): attributes,
// timestamp delta, offset delta (which must be i), key, value, headers,
// and nothing after them.
func checkRecord(r []byte, i int32) error {
	rd := recordReader{b: r[1:], ok: true} // attributes: one byte, unused
	rd.varint()                            // timestamp delta
	if d := rd.varint(); rd.ok && d != int64(i) {
		return fmt.Errorf("offset delta %d, want %d", d, i)
	}
	rd.bytes(true) // key
	rd.bytes(true) // value
	headers := rd.varint()
	if rd.ok && (headers < 0 || headers > int64(len(rd.b))) {
		return fmt.Errorf("%d headers", headers)
	}
	for range headers {
		rd.bytes(false) // header key
		rd.bytes(true)  // header value
	}
	switch {
	case !rd.ok:
		return fmt.Errorf("truncated or malformed")
	case len(rd.b) != 0:
		return fmt.Errorf("%d bytes after its headers", len(rd.b))
	}
	return nil
}

// recordReader reads the varint-framed fields of a record; ok turns
// false, for good, at the first that does not fit (b is then empty, and
// every later read fails too).
type recordReader struct {
	b  []byte
	ok bool
}

func (r *recordReader) varint() int64 {
	var x uint64
	for i, c := range r.b {
		if i == binary.MaxVarintLen64 || i == binary.MaxVarintLen64-1 && c > 1 {
			break // longer than 64 bits
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.b = r.b[i+1:]
			return int64(x>>1) ^ -int64(x&1)
		}
	}
	r.b, r.ok = nil, false
	return 0
}

// bytes skips a length-prefixed field; nullable lets its length be -1.
func (r *recordReader) bytes(nullable bool) {
	n := r.varint()
	switch {
	case !r.ok:
	case n == -1 && nullable:
	case n < 0 || n > int64(len(r.b)):
		r.b, r.ok = nil, false
	default:
		r.b = r.b[n:]
	}
}
