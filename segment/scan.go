package segment

import (
	"encoding/binary"
	"fmt"
)

// scanStop says why a scan over segment bytes stopped.
type scanStop struct {
	// Pos is the file position where the scan stopped: the end of the last
	// whole, valid batch.
	Pos int
	// Next is the offset the next batch would have had.
	Next int64
	// Clean is true when the scan stopped at the end of the bytes or at a
	// zeroed (preallocated, never written) header: the normal end of a log.
	Clean bool
	// Why says what is wrong at Pos when Clean is false.
	Why string
}

// scanBatches walks the batches in b from position pos, expecting the first
// to have base offset next (next < 0 accepts any), calling fn for each valid
// one. It stops at the first position that does not hold a whole, valid,
// in-sequence batch and reports why. It never allocates per batch.
func scanBatches(b []byte, pos int, next int64, fn func(pos int, h *BatchHeader) error) (scanStop, error) {
	for {
		rest := b[pos:]
		if len(rest) == 0 {
			return scanStop{Pos: pos, Next: next, Clean: true}, nil
		}
		if len(rest) < BatchHeaderSize {
			if allZero(rest) {
				return scanStop{Pos: pos, Next: next, Clean: true}, nil
			}
			return scanStop{Pos: pos, Next: next, Why: fmt.Sprintf("%d trailing bytes are shorter than a batch header", len(rest))}, nil
		}
		if allZero(rest[:BatchHeaderSize]) {
			return scanStop{Pos: pos, Next: next, Clean: true}, nil
		}
		length := int64(int32(binary.BigEndian.Uint32(rest[offBatchLength:])))
		size := length + lengthFieldEnd
		if size < BatchHeaderSize {
			return scanStop{Pos: pos, Next: next, Why: fmt.Sprintf("batch length %d is too small", length)}, nil
		}
		if size > int64(len(rest)) {
			return scanStop{Pos: pos, Next: next, Why: fmt.Sprintf("batch of %d bytes runs past the end of the file (%d bytes left)", size, len(rest))}, nil
		}
		h, err := ValidateBatch(rest[:size], 0)
		if err != nil {
			return scanStop{Pos: pos, Next: next, Why: err.Error()}, nil
		}
		if next >= 0 && h.BaseOffset != next {
			return scanStop{Pos: pos, Next: next, Why: fmt.Sprintf("batch base offset %d, expected %d", h.BaseOffset, next)}, nil
		}
		if fn != nil {
			if err := fn(pos, &h); err != nil {
				return scanStop{}, err
			}
		}
		pos += int(size)
		next = h.LastOffset() + 1
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// lastNonZero returns the index just past the last non-zero byte in b.
func lastNonZero(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i + 1
		}
	}
	return 0
}
