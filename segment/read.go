package segment

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
)

// segmentFor returns the segment holding offset. Callers hold mu.
func (l *Log) segmentFor(offset int64) *segment {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
	if i < 0 {
		return nil
	}
	return l.segments[i]
}

// Read returns a copy of the whole batches from the one holding offset on,
// as stored, up to maxBytes but always at least one batch (Kafka's fetch
// semantics), appended to dst. It reads from one segment and serves only
// durable data: at the high watermark it returns no bytes. An offset below
// the log start or above the high watermark is ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int, dst []byte) ([]byte, error) {
	return l.readInto(offset, maxBytes, dst, false)
}

// ReadAlloc is Read into a buffer of its own: it calls alloc with the
// number of bytes it is about to copy, once, and returns alloc's buffer
// filled (nil, and no call, when there is nothing to read or on an error
// before the copy).
func (l *Log) ReadAlloc(offset int64, maxBytes int, alloc func(n int) []byte) ([]byte, error) {
	return l.read(offset, maxBytes, alloc, false)
}

// ReadWritten is Read up to the log end instead of the high watermark: it
// also returns batches written but not yet durable. A controller ships its
// metadata batches to the followers while it syncs them (Raft allows the
// leader's write and the followers' in parallel); anything else must not
// serve such batches, since a failed sync drops them.
func (l *Log) ReadWritten(offset int64, maxBytes int, dst []byte) ([]byte, error) {
	return l.readInto(offset, maxBytes, dst, true)
}

// readInto serves Read and ReadWritten: read, appending to dst.
func (l *Log) readInto(offset int64, maxBytes int, dst []byte, written bool) ([]byte, error) {
	n := len(dst)
	out, err := l.read(offset, maxBytes, func(size int) []byte {
		dst = slices.Grow(dst, size)[:n+size]
		return dst[n:]
	}, written)
	if out == nil {
		return dst[:n], err
	}
	return dst, err
}

// mappedReadBytes is the most a read copies from the mapping instead of
// with pread.
const mappedReadBytes = 4 << 10

// read serves ReadAlloc and readInto: up to the high watermark, or with
// written up to the log end.
func (l *Log) read(offset int64, maxBytes int, alloc func(n int) []byte, written bool) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	last := l.durable
	if written {
		last = l.next
	}
	if offset < l.start || offset > last {
		return nil, fmt.Errorf("%w: offset %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, l.start, last)
	}
	if offset == last {
		return nil, nil
	}
	s := l.segmentFor(offset)
	v, err := l.viewLocked(s, written)
	if err != nil {
		return nil, err
	}
	defer v.release()
	pos, ok := findBatch(v.data, v.idx, s.base, offset)
	if !ok {
		return nil, fmt.Errorf("%w: offset %d not found in %s", ErrCorrupt, offset, s.path)
	}
	end := batchesUpTo(v.data, pos, maxBytes)
	if v.f == nil {
		return nil, fmt.Errorf("%w: %s is not open", ErrClosed, s.path)
	}
	// The batch boundaries come from the mapping; the bytes are copied with
	// pread, which copies through the kernel's huge-page direct map: twice
	// as fast as copying from 4 KiB mapped pages on the machines measured
	// (see the README's performance section). A small read is copied from
	// the mapping, whose page findBatch has just touched: a system call
	// costs more than the copy (a metadata change's commit and shipping
	// read one small batch each, a lone record's fetch one).
	out := alloc(end - pos)
	if end-pos <= mappedReadBytes {
		copy(out, v.data[pos:end])
		return out, nil
	}
	if _, err := v.f.ReadAt(out, int64(pos)); err != nil {
		return nil, fmt.Errorf("segment: read %s at %d: %w", s.path, pos, err)
	}
	return out, nil
}

// HeaderAt returns the header of the durable batch holding offset, read
// from the mapping (nothing copied but the header). An offset below the
// log start or at or above the high watermark is ErrOffsetOutOfRange.
func (l *Log) HeaderAt(offset int64) (BatchHeader, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return BatchHeader{}, ErrClosed
	}
	if offset < l.start || offset >= l.durable {
		return BatchHeader{}, fmt.Errorf("%w: offset %d is outside [%d, %d)", ErrOffsetOutOfRange, offset, l.start, l.durable)
	}
	s := l.segmentFor(offset)
	v, err := l.viewLocked(s, false)
	if err != nil {
		return BatchHeader{}, err
	}
	defer v.release()
	pos, ok := findBatch(v.data, v.idx, s.base, offset)
	if !ok {
		return BatchHeader{}, fmt.Errorf("%w: offset %d not found in %s", ErrCorrupt, offset, s.path)
	}
	return ParseHeader(v.data[pos:])
}

// view is what a reader needs of one segment while it holds Log.mu.
type view struct {
	data    []byte // the durable (or written) bytes, mapped
	f       File   // the same bytes, for pread
	idx     *indexes
	release func()
}

// viewLocked returns the durable bytes of s (with written, every byte
// written) and its indexes. Callers hold mu (read or write) until they call
// release.
func (l *Log) viewLocked(s *segment, written bool) (view, error) {
	if a := s.active; a != nil {
		end := a.synced
		if written {
			end = s.size
		}
		return view{data: a.buf[:end], f: a.f, idx: &a.idx, release: func() {}}, nil
	}
	data, f, idx, err := l.cache.acquire(s, s.size, s.next, l.cfg.IndexIntervalBytes)
	if err != nil {
		return view{}, err
	}
	return view{data: data, f: f, idx: idx, release: func() { l.cache.release(s) }}, nil
}

// LookupTime returns the offset and timestamp of the first durable record
// whose timestamp is >= ts, in the first batch whose max timestamp is
// (Kafka's ListOffsets by timestamp), never below the log start offset, or
// found=false if there is none.
func (l *Log) LookupTime(ts int64) (offset, at int64, found bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, false, ErrClosed
	}
	for _, s := range l.segments {
		if s.maxTs < ts {
			continue
		}
		v, err := l.viewLocked(s, false)
		if err != nil {
			return 0, 0, false, err
		}
		pos, ok := findTime(v.data, v.idx, ts)
		if ok {
			off, at := recordOffset(v.data[pos:pos+storedSize(v.data[pos:])], func(r *Record) bool { return r.Timestamp >= ts && r.Offset >= l.start })
			v.release()
			// Records before the start are deleted (DeleteRecordsBefore).
			return max(off, l.start), at, true, nil
		}
		v.release()
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the highest timestamp among the durable records and
// the offset of the first record that has it (Kafka's ListOffsets
// MAX_TIMESTAMP); ok is false for an empty log.
func (l *Log) MaxTimestamp() (ts, offset int64, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, false, ErrClosed
	}
	ts = -1
	var in *segment // the segment of the batch that has it
	for _, s := range l.segments {
		if s.active == nil {
			if s.maxTs > ts {
				ts, offset, ok, in = s.maxTs, s.maxTsOffset, true, s
			}
			continue
		}
		data := s.active.buf[:s.active.synced]
		for pos := 0; ; {
			n := storedSize(data[pos:])
			if n == 0 {
				break
			}
			if bts := int64(binary.BigEndian.Uint64(data[pos+offMaxTimestamp:])); bts > ts {
				ts, offset, ok, in = bts, int64(binary.BigEndian.Uint64(data[pos+offBaseOffset:])), true, s
			}
			pos += n
		}
	}
	if !ok {
		return ts, offset, false, nil
	}
	// offset is the base of the batch: find the record.
	v, err := l.viewLocked(in, false)
	if err != nil {
		return 0, 0, false, err
	}
	defer v.release()
	if pos, found := findBatch(v.data, v.idx, in.base, offset); found {
		offset, _ = recordOffset(v.data[pos:pos+storedSize(v.data[pos:])], func(r *Record) bool { return r.Timestamp == ts })
	}
	return ts, offset, true, nil
}

// recordLookupLimit bounds what a timestamp lookup decompresses of one
// batch; past it, the answer is the batch's base offset.
const recordLookupLimit = 16 << 20

// recordOffset returns the offset of the first record of batch that match
// accepts, or the batch's base offset if none does or the records cannot
// be read.
func recordOffset(batch []byte, match func(*Record) bool) (offset, ts int64) {
	base := int64(binary.BigEndian.Uint64(batch[offBaseOffset:]))
	maxTs := int64(binary.BigEndian.Uint64(batch[offMaxTimestamp:]))
	recs, err := DecodeRecords(batch, recordLookupLimit)
	if err != nil {
		return base, maxTs
	}
	for i := range recs {
		if match(&recs[i]) {
			return recs[i].Offset, recs[i].Timestamp
		}
	}
	return base, maxTs
}

// Headers calls fn with the header of each durable batch, in offset
// order, leaving out the sealed segments whose batches all have timestamps
// before since (pass a negative since for all of them). It reads the
// headers alone, from the mappings: rebuilding per-batch state (the
// producers' sequences) costs a page per batch instead of a read of the
// whole log. fn gets the stored batch too (mapped: valid only during the
// call; control batches are read for their type). The log takes no appends
// until it returns; fn must not call the log.
func (l *Log) Headers(since int64, fn func(h *BatchHeader, batch []byte) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	for _, s := range l.segments {
		if s.active == nil && s.maxTs > 0 && s.maxTs < since {
			continue // a segment of batches without timestamps is read
		}
		v, err := l.viewLocked(s, false)
		if err != nil {
			return err
		}
		err = walkHeaders(v.data, fn)
		v.release()
		if err != nil {
			return err
		}
	}
	return nil
}

func walkHeaders(data []byte, fn func(h *BatchHeader, batch []byte) error) error {
	for pos := 0; ; {
		n := storedSize(data[pos:])
		if n == 0 {
			return nil
		}
		h, err := ParseHeader(data[pos:])
		if err != nil {
			return err
		}
		if err := fn(&h, data[pos:pos+n]); err != nil {
			return err
		}
		pos += n
	}
}
