package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// RecordBatch v2 header layout (Kafka's on-the-wire and on-disk format).
// These constants are part of the on-disk format.
const (
	offBaseOffset      = 0  // int64, assigned on append
	offBatchLength     = 8  // int32, bytes after this field
	offLeaderEpoch     = 12 // int32, assigned on append
	offMagic           = 16 // int8, must be 2
	offCRC             = 17 // uint32, CRC-32C of bytes [21, end)
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offBaseTimestamp   = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offRecordCount     = 57 // int32

	// BatchHeaderSize is the size of a RecordBatch v2 header; records follow it.
	BatchHeaderSize = 61
	// lengthFieldEnd is where batchLength starts counting.
	lengthFieldEnd = 12

	batchMagic = 2
)

// Compression codecs, the low three bits of a batch's attributes.
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLZ4    = 3
	CodecZstd   = 4
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Errors returned for batches that cannot be appended. They are sentinels:
// callers map them to Kafka error codes with errors.Is.
var (
	// ErrCorruptBatch: the batch's CRC-32C does not match its bytes, or its
	// length fields disagree with the bytes given (Kafka: CORRUPT_MESSAGE).
	ErrCorruptBatch = errors.New("segment: corrupt record batch")
	// ErrUnsupportedMagic: the batch is not RecordBatch v2
	// (Kafka: UNSUPPORTED_FOR_MESSAGE_FORMAT).
	ErrUnsupportedMagic = errors.New("segment: unsupported record batch magic")
	// ErrInvalidBatch: the header holds values no valid batch has, such as a
	// negative record count or an unknown compression codec (Kafka: INVALID_RECORD).
	ErrInvalidBatch = errors.New("segment: invalid record batch")
	// ErrBatchTooLarge: the batch exceeds the topic's max.message.bytes or the
	// segment size (Kafka: MESSAGE_TOO_LARGE).
	ErrBatchTooLarge = errors.New("segment: record batch too large")
)

// BatchHeader is the decoded fixed header of one RecordBatch v2.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // batchLength field: total size is Length+12
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the batch's total size in bytes.
func (h *BatchHeader) Size() int { return int(h.Length) + lengthFieldEnd }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the compression codec from the attributes.
func (h *BatchHeader) Codec() int { return int(h.Attributes & 0x7) }

// stampAppendTime makes batch a LogAppendTime batch of time ms: the
// timestamp type bit of its attributes set, its max timestamp ms, and its
// CRC computed again over them; h follows.
func stampAppendTime(batch []byte, h *BatchHeader, ms int64) {
	h.Attributes |= 0x8
	h.MaxTimestamp = ms
	binary.BigEndian.PutUint16(batch[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ms))
	h.CRC = setCRC(batch)
}

// setCRC computes a batch's CRC-32C (of the bytes after the CRC field),
// writes it and returns it.
func setCRC(batch []byte) uint32 {
	crc := crc32.Checksum(batch[offAttributes:], crc32c)
	binary.BigEndian.PutUint32(batch[offCRC:], crc)
	return crc
}

// LogAppendTime reports whether the batch's timestamps are broker-assigned.
func (h *BatchHeader) LogAppendTime() bool { return h.Attributes&0x8 != 0 }

// Transactional reports the transactional attribute bit.
func (h *BatchHeader) Transactional() bool { return h.Attributes&0x10 != 0 }

// Control reports the control-batch attribute bit.
func (h *BatchHeader) Control() bool { return h.Attributes&0x20 != 0 }

// CodecName names a compression codec as Kafka's configs do.
func CodecName(c int) string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", c)
}

// ParseHeader decodes the fixed header at the start of b. It checks only
// that b holds a whole header; it does not look at the records or the CRC.
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes is shorter than a batch header (%d)", ErrCorruptBatch, len(b), BatchHeaderSize)
	}
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[offRecordCount:])),
	}, nil
}

// NextBatch returns the header and the bytes of the batch at the start of
// b, whose length field must fit in b: a header cut short, or a length
// below a header's or past the end of b, is ErrCorruptBatch. Like
// ParseHeader it does not look at the records or the CRC.
func NextBatch(b []byte) (BatchHeader, []byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.Size() < BatchHeaderSize || h.Size() > len(b) {
		return h, nil, fmt.Errorf("%w: a batch of %d bytes in the %d left", ErrCorruptBatch, h.Size(), len(b))
	}
	return h, b[:h.Size()], nil
}

// ValidateBatch checks that b is exactly one well-formed RecordBatch v2 no
// larger than maxBytes: header fields in range, batchLength matching len(b),
// and a matching CRC-32C. It never allocates and never panics.
func ValidateBatch(b []byte, maxBytes int) (BatchHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Magic != batchMagic {
		return h, fmt.Errorf("%w: magic %d, only record batch v2 (magic 2) is accepted", ErrUnsupportedMagic, h.Magic)
	}
	if int64(h.Length)+lengthFieldEnd != int64(len(b)) {
		return h, fmt.Errorf("%w: batchLength %d does not match the %d bytes given", ErrCorruptBatch, h.Length, len(b))
	}
	if maxBytes > 0 && len(b) > maxBytes {
		return h, fmt.Errorf("%w: %d bytes exceeds the limit of %d (max.message.bytes)", ErrBatchTooLarge, len(b), maxBytes)
	}
	if err := checkHeaderFields(&h); err != nil {
		return h, err
	}
	return h, checkCRC(b, &h)
}

// checkCRC compares a batch's CRC-32C with its header.
func checkCRC(b []byte, h *BatchHeader) error {
	return crcMatches(crc32.Checksum(b[offAttributes:], crc32c), h)
}

// crcMatches compares a batch's computed CRC-32C with its header's.
func crcMatches(got uint32, h *BatchHeader) error {
	if got != h.CRC {
		return fmt.Errorf("%w: CRC-32C is %08x, the header says %08x", ErrCorruptBatch, got, h.CRC)
	}
	return nil
}

func checkHeaderFields(h *BatchHeader) error {
	switch {
	case h.Codec() > CodecZstd:
		return fmt.Errorf("%w: unknown compression codec %d", ErrInvalidBatch, h.Codec())
	case h.RecordCount < 0:
		return fmt.Errorf("%w: negative record count %d", ErrInvalidBatch, h.RecordCount)
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("%w: negative lastOffsetDelta %d", ErrInvalidBatch, h.LastOffsetDelta)
	case h.RecordCount > 0 && h.LastOffsetDelta < h.RecordCount-1:
		return fmt.Errorf("%w: lastOffsetDelta %d is less than record count %d minus one", ErrInvalidBatch, h.LastOffsetDelta, h.RecordCount)
	}
	return nil
}

// setOffsetAndEpoch writes the broker-assigned fields into a batch in place.
// Neither is covered by the CRC.
func setOffsetAndEpoch(b []byte, base int64, epoch int32) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
