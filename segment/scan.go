package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"sync"
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
		h, stop := nextHeader(b, pos, next)
		if stop != nil {
			return *stop, nil
		}
		if err := checkCRC(b[pos:pos+h.Size()], &h); err != nil {
			return scanStop{Pos: pos, Next: next, Why: err.Error()}, nil
		}
		if fn != nil {
			if err := fn(pos, &h); err != nil {
				return scanStop{}, err
			}
		}
		pos += h.Size()
		next = h.LastOffset() + 1
	}
}

// nextHeader checks everything about the batch at pos but its CRC, or says
// why the scan stops there.
func nextHeader(b []byte, pos int, next int64) (BatchHeader, *scanStop) {
	rest := b[pos:]
	stop := func(why string) (BatchHeader, *scanStop) {
		return BatchHeader{}, &scanStop{Pos: pos, Next: next, Clean: why == "", Why: why}
	}
	if len(rest) == 0 {
		return stop("")
	}
	if len(rest) < BatchHeaderSize {
		if AllZero(rest) {
			return stop("")
		}
		return stop(fmt.Sprintf("%d trailing bytes are shorter than a batch header", len(rest)))
	}
	if AllZero(rest[:BatchHeaderSize]) {
		return stop("")
	}
	length := int64(int32(binary.BigEndian.Uint32(rest[offBatchLength:])))
	size := length + lengthFieldEnd
	if size < BatchHeaderSize {
		return stop(fmt.Sprintf("batch length %d is too small", length))
	}
	if size > int64(len(rest)) {
		return stop(fmt.Sprintf("batch of %d bytes runs past the end of the file (%d bytes left)", size, len(rest)))
	}
	h, _ := ParseHeader(rest)
	if h.Magic != batchMagic {
		return stop(fmt.Sprintf("%v: magic %d", ErrUnsupportedMagic, h.Magic))
	}
	if err := checkHeaderFields(&h); err != nil {
		return stop(err.Error())
	}
	if next >= 0 && h.BaseOffset != next {
		return stop(fmt.Sprintf("batch base offset %d, expected %d", h.BaseOffset, next))
	}
	return h, nil
}

// scanWindow is how many bytes of batches scanBatchesParallel checks at
// once (a variable so that tests can make it small).
var scanWindow = 32 << 20

// scanBatchesParallel is scanBatches with the CRC-32C checks, which are
// most of the work, spread over the CPUs: it walks the headers of a window
// of batches, checks their CRCs in parallel, and stops at the first bad one.
// With r (the file b maps), the CRCs are computed over bytes read from r a
// chunk at a time instead of through the mapping: the kernel copies page
// cache through its huge-page direct map, and the CRC runs over a buffer in
// cache, where walking a mapping of a file held in small folios costs a
// page fault and TLB misses every few pages (see the README's recovery
// figures). An error reading r is returned as such, not as damage.
func scanBatchesParallel(b []byte, pos int, next int64, r io.ReaderAt, fn func(pos int, h *BatchHeader)) (scanStop, error) {
	workers := runtime.GOMAXPROCS(0)
	checkers := make([]crcChecker, workers)
	for i := range checkers {
		checkers[i].r = r
	}
	type item struct {
		pos int
		h   BatchHeader
	}
	var items []item
	for {
		items = items[:0]
		var stop *scanStop
		start := pos
		for pos-start < scanWindow {
			var h BatchHeader
			if h, stop = nextHeader(b, pos, next); stop != nil {
				break
			}
			items = append(items, item{pos, h})
			pos += h.Size()
			next = h.LastOffset() + 1
		}
		// Check the window's CRCs: worker w takes the w-th share of the
		// items and records the first bad index it sees.
		bad := len(items)
		var readErr error
		var mu sync.Mutex
		var wg sync.WaitGroup
		per := max(1, (len(items)+workers-1)/workers)
		for w, lo := 0, 0; lo < len(items); w, lo = w+1, lo+per {
			hi := min(lo+per, len(items))
			c := &checkers[w]
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					it := &items[i]
					if err := c.check(b, it.pos, &it.h); err != nil {
						mu.Lock()
						if errors.Is(err, ErrCorruptBatch) {
							bad = min(bad, i)
						} else if readErr == nil {
							readErr = err
						}
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		if readErr != nil {
			return scanStop{}, readErr
		}
		for i := range items[:bad] {
			fn(items[i].pos, &items[i].h)
		}
		if bad < len(items) {
			it := items[bad]
			err := checkers[0].check(b, it.pos, &it.h)
			if !errors.Is(err, ErrCorruptBatch) {
				return scanStop{}, err
			}
			return scanStop{Pos: it.pos, Next: it.h.BaseOffset, Why: err.Error()}, nil
		}
		if stop != nil {
			return *stop, nil
		}
	}
}

// crcChecker checks batches' CRC-32Cs, over b or, with r, over the same
// bytes read from r into buf a chunk at a time (buf is made on first use).
type crcChecker struct {
	r   io.ReaderAt
	buf []byte
}

// crcChunk is how much a crcChecker reads at a time: small enough to stay
// in a core's cache while its CRC is computed.
const crcChunk = 256 << 10

func (c *crcChecker) check(b []byte, pos int, h *BatchHeader) error {
	if c.r == nil {
		return checkCRC(b[pos:pos+h.Size()], h)
	}
	if need := min(crcChunk, h.Size()); len(c.buf) < need {
		// As large as the batches need: a partition of small batches
		// does not allocate (and zero) a whole chunk.
		c.buf = make([]byte, need)
	}
	var crc uint32
	for off, end := int64(pos+offAttributes), int64(pos+h.Size()); off < end; {
		chunk := c.buf[:min(int64(len(c.buf)), end-off)]
		if n, err := c.r.ReadAt(chunk, off); n < len(chunk) {
			return fmt.Errorf("segment: read at %d: %w", off, err)
		}
		crc = crc32.Update(crc, crc32c, chunk)
		off += int64(len(chunk))
	}
	return crcMatches(crc, h)
}

// AllZero reports whether b holds only zeros: what a file holds past its
// last record when its room is allocated ahead (a log's segments, Raft's
// storage), not a torn record.
func AllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// zeroChunk is what lastNonZero compares b with, a chunk at a time.
var zeroChunk [64 << 10]byte

// lastNonZero returns the index just past the last non-zero byte in b. It
// compares whole chunks with zeros (bytes.Equal is vectorised), forwards,
// as the pages come in: a preallocated tail of 8 MiB took 8 ms a byte at a
// time, and a start-up with 3,000 partitions after a crash 45 s.
func lastNonZero(b []byte) int {
	last := -1 // start of the last chunk that holds a non-zero byte
	for start := 0; start < len(b); start += len(zeroChunk) {
		end := min(start+len(zeroChunk), len(b))
		if !bytes.Equal(b[start:end], zeroChunk[:end-start]) {
			last = start
		}
	}
	if last < 0 {
		return 0
	}
	for i := min(last+len(zeroChunk), len(b)) - 1; i > last; i-- {
		if b[i] != 0 {
			return i + 1
		}
	}
	return last + 1
}
