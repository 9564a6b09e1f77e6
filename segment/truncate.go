package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// ErrNotBatchBoundary: a truncation offset must be where a batch starts.
var ErrNotBatchBoundary = errors.New("segment: offset is not the start of a batch")

// TruncateTo removes every batch at offset and after, as a follower does
// with a log tail that diverges from its leader's: the next append gets
// offset. offset must be where a batch starts (or the log end), and not
// below the log start. Appends not yet synced that it removes fail, and the
// high watermark moves back to offset if it was beyond.
//
// Crash safety: the recovery point is moved back first, so that a crash
// before the removed bytes are zeroed finds them beyond the point, where
// open treats them as an unsynced tail (it may keep them, whole and valid,
// as if the truncation had not happened; it never takes the zeros the
// truncation leaves for damage). When TruncateTo returns the truncation is
// durable.
func (l *Log) TruncateTo(offset int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	switch {
	case offset < l.start:
		return fmt.Errorf("%w: cannot truncate to %d, below the log start %d", ErrOffsetOutOfRange, offset, l.start)
	case offset >= l.next:
		return nil
	}
	for l.active().active.busy() {
		l.idle.Wait()
	}
	i := len(l.segments) - 1
	for l.segments[i].base > offset {
		i--
	}
	seg := l.segments[i]
	pos, err := l.batchStart(seg, offset)
	if err != nil {
		return err
	}
	// Syncs in flight no longer cover what they were syncing, and writes
	// not yet resolved are gone.
	l.dropGen++
	if err := l.writeRecoveryPointLocked(seg.base, pos); err != nil {
		return l.failLocked(err)
	}
	if seg.active == nil {
		err = l.reactivateLocked(i, pos)
	} else {
		err = l.cutActiveLocked(seg, pos)
	}
	if err != nil {
		return l.failLocked(fmt.Errorf("segment: truncate to %d: %w", offset, err))
	}
	l.next = offset
	l.durable = min(l.durable, offset)
	l.log.Info("truncated", "offset", offset, "file", filepath.Base(seg.path), "position", pos)
	return nil
}

// writableLocked refuses a closed or failed log.
func (l *Log) writableLocked() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.failed != nil:
		return fmt.Errorf("%w: %v", ErrLogFailed, l.failed)
	}
	return nil
}

// batchStart returns the position in seg of the batch that starts at
// offset, or the segment's size if offset is its end.
func (l *Log) batchStart(seg *segment, offset int64) (int64, error) {
	if offset == seg.next {
		return seg.size, nil
	}
	var data []byte
	var idx *indexes
	if a := seg.active; a != nil {
		data, idx = a.buf[:seg.size], &a.idx
	} else {
		d, _, x, err := l.cache.acquire(seg, seg.size, seg.next, l.cfg.IndexIntervalBytes)
		if err != nil {
			return 0, err
		}
		defer l.cache.release(seg)
		data, idx = d, x
	}
	pos, ok := findBatch(data, idx, seg.base, offset)
	if !ok {
		return 0, fmt.Errorf("%w: no batch holds offset %d", ErrNotBatchBoundary, offset)
	}
	if h, err := ParseHeader(data[pos:]); err != nil || h.BaseOffset != offset {
		return 0, fmt.Errorf("%w: offset %d is inside the batch at position %d", ErrNotBatchBoundary, offset, pos)
	}
	return int64(pos), nil
}

// cutActiveLocked zeroes the active segment from pos, syncs, and rebuilds
// its in-memory indexes from what remains.
func (l *Log) cutActiveLocked(seg *segment, pos int64) error {
	a := seg.active
	if a.mmapWrites {
		clear(a.buf[pos:seg.size])
		a.m.Dirty(int(pos), int(seg.size-pos))
	} else if err := writeZeros(a.f, pos, seg.size); err != nil {
		return err
	}
	if err := a.f.Sync(); err != nil {
		return err
	}
	a.idx = newIndexes()
	stop, err := scanBatchesParallel(a.buf[:pos], 0, seg.base, nil, func(p int, h *BatchHeader) {
		a.idx.add(seg.base, p, h, l.cfg.IndexIntervalBytes)
	})
	if err != nil {
		return err
	}
	seg.size, seg.next, seg.maxTs = pos, stop.Next, a.idx.maxTs
	a.synced = min(a.synced, pos)
	return nil
}

// reactivateLocked makes sealed segment i the active one again, cut at
// pos: the segments after it go (files removed, directory synced), its file
// is cut to pos and its index files removed (they describe the old
// length), and it is reopened for appends.
func (l *Log) reactivateLocked(i int, pos int64) error {
	seg := l.segments[i]
	old := l.active()
	a := old.active
	a.m.Unmap()
	a.f.Close()
	old.active = nil
	for _, s := range l.segments[i+1:] {
		if err := l.removeSegmentFiles(s); err != nil {
			return err
		}
	}
	l.cache.forget(seg)
	for _, p := range []string{seg.indexPath(), seg.timeIndexPath()} {
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// A fresh segment value: the sealed one's view is being forgotten.
	l.segments = append(l.segments[:i], newSegment(l.dir, seg.base))
	f, err := l.fs.OpenFile(seg.path, osRDWRCreate, 0o644)
	if err == nil {
		err = f.Truncate(pos)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return err
	}
	_, err = l.openActive(recoveryPoint{base: seg.base, pos: pos}, true, false)
	return err
}

// removeSegmentFiles forgets a segment's mapping and removes its files.
func (l *Log) removeSegmentFiles(s *segment) error {
	l.cache.forget(s)
	for _, p := range []string{s.logPath(), s.indexPath(), s.timeIndexPath()} {
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// ResetTo empties the log and starts it again at offset: every segment
// goes, and the next append gets offset (Kafka's truncateFullyAndStartAt).
// A follower installing a snapshot of everything before offset uses it.
func (l *Log) ResetTo(offset int64) error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: cannot start at %d", ErrOffsetOutOfRange, offset)
	}
	for l.active().active.busy() {
		l.idle.Wait()
	}
	l.dropGen++
	// The recovery point first: a crash part way leaves a log that opens.
	if err := l.writeRecoveryPointLocked(offset, 0); err != nil {
		return l.failLocked(err)
	}
	old := l.active()
	old.active.m.Unmap()
	old.active.f.Close()
	old.active = nil
	for _, s := range l.segments {
		if err := l.removeSegmentFiles(s); err != nil {
			return l.failLocked(fmt.Errorf("segment: reset to %d: %w", offset, err))
		}
	}
	// A start moved by DeleteRecordsBefore no longer applies: the log starts
	// at offset (the directory sync below makes the removal durable).
	if err := l.fs.Remove(filepath.Join(l.dir, startOffsetFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l.failLocked(fmt.Errorf("segment: reset to %d: %w", offset, err))
	}
	l.segments = []*segment{newSegment(l.dir, offset)}
	if _, err := l.openActive(recoveryPoint{base: offset}, true, false); err != nil {
		return l.failLocked(fmt.Errorf("segment: reset to %d: %w", offset, err))
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failLocked(fmt.Errorf("segment: reset to %d: %w", offset, err))
	}
	l.start, l.next, l.durable = offset, offset, offset
	close(l.notify)
	l.notify = make(chan struct{})
	l.log.Info("reset", "offset", offset)
	return nil
}
