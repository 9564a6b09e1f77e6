package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Retention deletes whole sealed segments that retention.ms or
// retention.bytes no longer keep, or that hold only records deleted
// before the log start offset, oldest first, and moves the log start
// offset past them. The active segment is never deleted. It returns how
// many segments went.
func (l *Log) Retention(now time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	n := 0
	for n < len(l.segments)-1 {
		s := l.segments[n]
		expired := l.cfg.RetentionMs >= 0 && s.maxTs >= 0 && now.Sub(time.UnixMilli(s.maxTs)) > l.cfg.RetentionMs
		tooBig := l.cfg.RetentionBytes >= 0 && total-s.size >= l.cfg.RetentionBytes
		deleted := s.next <= l.start // records deleted (DeleteRecordsBefore)
		if !expired && !tooBig && !deleted {
			break
		}
		total -= s.size
		n++
	}
	return n, l.deleteFirstLocked(n)
}

// DeleteSegmentsBefore deletes the sealed segments that hold only offsets
// below offset (a snapshot covers them) and moves the log start offset.
func (l *Log) DeleteSegmentsBefore(offset int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.deleteSegmentsBeforeLocked(offset)
}

// deleteSegmentsBeforeLocked deletes the sealed segments that hold only
// offsets below offset.
func (l *Log) deleteSegmentsBeforeLocked(offset int64) (int, error) {
	n := 0
	for n < len(l.segments)-1 && l.segments[n].next <= offset {
		n++
	}
	return n, l.deleteFirstLocked(n)
}

// Roll seals the active segment, if it holds anything, and starts the next
// one at the log end, which it returns. Everything before that offset is
// then durable and in sealed segments, which DeleteSegmentsBefore deletes
// once what replaces them (a compacted copy appended after it) is durable.
func (l *Log) Roll() (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if err := l.writableLocked(); err != nil {
			return 0, err
		}
		if !l.active().active.busy() {
			break
		}
		l.idle.Wait() // the active file is being extended or synced
	}
	if l.active().size > 0 {
		if err := l.rollLocked(); err != nil {
			return 0, err
		}
	}
	return l.next, nil
}

// deleteFirstLocked deletes the first n segments, which are sealed.
func (l *Log) deleteFirstLocked(n int) error {
	if n == 0 {
		return nil
	}
	gone := l.segments[:n]
	l.segments = append([]*segment(nil), l.segments[n:]...)
	l.start = max(l.start, l.segments[0].base)
	var firstErr error
	for _, s := range gone {
		l.cache.forget(s)
		for _, p := range []string{s.logPath(), s.indexPath(), s.timeIndexPath()} {
			if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				firstErr = fmt.Errorf("segment: retention: %w", err)
			}
		}
		l.log.Info("deleted segment", "file", filepath.Base(s.path), "bytes", s.size, "last_offset", s.next-1)
	}
	if err := l.fs.SyncDir(l.dir); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}
