package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/loglimit"
)

// Errors of a Log's operations.
var (
	// ErrOffsetOutOfRange: the offset is below the log start or above the
	// high watermark (Kafka: OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrQueueFull: too many writes wait for a sync; retry later
	// (Kafka: a retriable error such as REQUEST_TIMED_OUT).
	ErrQueueFull = errors.New("segment: write queue is full, retry later")
	// ErrClosed: the log or its store was closed.
	ErrClosed = errors.New("segment: log is closed")
	// ErrSyncFailed: the write was not made durable; the log no longer
	// holds it (Kafka: KAFKA_STORAGE_ERROR).
	ErrSyncFailed = errors.New("segment: sync failed, write not durable")
	// ErrLogFailed: an earlier I/O failure left the log unable to take
	// writes until it is reopened (Kafka: KAFKA_STORAGE_ERROR).
	ErrLogFailed = errors.New("segment: log failed after an I/O error")
	// ErrCorrupt: the log holds damaged data before its recovery point and
	// refuses to open (see CorruptionError).
	ErrCorrupt = errors.New("segment: log is corrupt")
	// ErrEndMoved: AppendAt found the log's end elsewhere than the writer
	// said: a failed sync dropped writes the writer made before.
	ErrEndMoved = errors.New("segment: the log does not end where the writer expected")
)

// CorruptionError names where a log is damaged. errors.Is(err, ErrCorrupt).
type CorruptionError struct {
	Path     string // the .log file
	Offset   int64  // the offset expected at Position
	Position int64  // byte position in the file
	Why      string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("segment: corrupt log %s at position %d (offset %d): %s; the data there was synced before, so this is damage, not a torn write: restore the partition from a replica or move the file away", e.Path, e.Position, e.Offset, e.Why)
}

func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// Log is one partition's log: a directory of segments. Append, Read and the
// other methods are safe for concurrent use.
type Log struct {
	dir   string
	fs    FS
	cfg   Config
	c     *committer
	cache *mapCache
	prep  chan<- *Log
	log   *slog.Logger
	// unclean is the store's: set when this log fails or does not close
	// cleanly, so that the store's stop is not marked clean.
	unclean *atomic.Bool
	// limit is the store's: lines that every partition of a full disk
	// would write alike are written once in a while.
	limit *loglimit.Limiter

	// startMu serialises writes of the log-start-offset file
	// (DeleteRecordsBefore, ResetTo), which do not hold up syncs. Lock
	// order: startMu before syncMu before mu.
	startMu sync.Mutex
	// syncMu serialises recovery-point writes and Close. Lock order:
	// syncMu before mu.
	syncMu sync.Mutex
	rpFile File      // guarded by syncMu
	rpSeq  uint64    // guarded by syncMu
	rpAt   time.Time // guarded by syncMu

	mu sync.RWMutex
	// segments are sorted by base offset; the last one is active. Never empty.
	segments []*segment
	// start is the log start offset: start <= durable <= next.
	start int64
	// durable: offsets below it are synced; it is the high watermark.
	durable int64
	// next is the offset the next batch gets.
	next int64
	// dropGen counts the times unsynced writes were dropped after a failed
	// sync; a sync that overlapped one does not advance durable.
	dropGen uint64
	// dirsUnsynced are the directories holding the partition's entries
	// (its directory, its segments), synced with this process's first data
	// sync instead of at open, so that opening or creating a partition
	// costs no sync of its own (an earlier process may have made them and
	// stopped before syncing them). Guarded by mu.
	dirsUnsynced []string
	// created: this process made the partition (open found no segment).
	created bool
	// idle is signalled (on mu) when a background allocation or a sync of
	// the active file ends (activeFile.busy).
	idle *sync.Cond
	// avgBatch is a moving average of the appended batches' sizes, which
	// decides whether the next allocation step is zeroed (see prepare).
	avgBatch int64
	// allocSteps counts the allocation steps taken since open (step).
	allocSteps int
	// allocWarned: a failed allocation ahead was logged, and none has
	// succeeded since.
	allocWarned bool
	// appendFails counts the appends that failed to allocate or write
	// since the last "appending again"; failing: the last line logged
	// said "cannot append", at failLogged (appendFailed).
	appendFails int64
	failing     bool
	failLogged  time.Time
	// notify is closed and replaced whenever durable advances.
	notify chan struct{}
	failed error
	closed bool
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// Config is the log's configuration.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig changes the configuration for later appends, rolls and
// retention. The segment size of the active segment is fixed when it is
// created.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	return nil
}

// StartOffset is the log start offset: the first offset still held.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// EndOffset is the log end offset: the offset the next batch gets.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.next
}

// HighWatermark is the end of the durable data: the offset below which
// reads are served.
func (l *Log) HighWatermark() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.durable
}

// Wait returns a channel that is closed when the high watermark next moves
// (or the log closes). Fetch long-polls use it.
func (l *Log) Wait() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.notify
}

// Size is the log's total size in bytes.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// Segments is the number of segments.
func (l *Log) Segments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segments)
}

func (l *Log) advanceDurableLocked(to int64) {
	if to > l.durable {
		l.durable = to
		close(l.notify)
		l.notify = make(chan struct{})
	}
}

// Close syncs what was appended, records the recovery point and releases
// the files. Writes still waiting for a sync are resolved by that sync.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	var err error
	seg := l.active()
	a := seg.active
	for a.busy() {
		l.idle.Wait()
	}
	if l.failed == nil {
		if err = a.f.Sync(); err == nil {
			a.synced = seg.size
			l.advanceDurableLocked(l.next)
			err = l.writeRecoveryPointLocked(seg.base, seg.size)
		}
		if l.created {
			// A partition made here and never written: its entries
			// become durable now, so that a clean stop leaves every
			// partition it made (one that existed before was made
			// durable by the process that made it, or by a write).
			for _, d := range l.dirsUnsynced {
				if err == nil {
					err = l.fs.SyncDir(d)
				}
			}
		}
	}
	if l.failed != nil || err != nil {
		l.unclean.Store(true)
	}
	l.closed = true
	if uerr := a.m.Unmap(); err == nil {
		err = uerr
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if l.rpFile != nil {
		l.rpFile.Close()
		l.rpFile = nil
	}
	for _, s := range l.segments[:len(l.segments)-1] {
		l.cache.forget(s)
	}
	close(l.notify)
	l.notify = make(chan struct{})
	return err
}

// writeRecoveryPointLocked records (base, pos) as synced. Callers hold
// syncMu and have synced the data it names.
func (l *Log) writeRecoveryPointLocked(base, pos int64) error {
	if l.rpFile == nil {
		f, err := openRecoveryPointFile(l.fs, l.dir)
		if err != nil {
			return err
		}
		l.rpFile = f
	}
	l.rpSeq++
	rp := recoveryPoint{seq: l.rpSeq, base: base, pos: pos}
	if _, err := l.rpFile.WriteAt(encodeRecoveryPoint(rp), int64(rp.seq%2)*rpSlotSize); err != nil {
		return fmt.Errorf("segment: write recovery point: %w", err)
	}
	if err := l.rpFile.Sync(); err != nil {
		return fmt.Errorf("segment: sync recovery point: %w", err)
	}
	l.rpAt = time.Now()
	return nil
}

func openRecoveryPointFile(fs FS, dir string) (File, error) {
	f, err := fs.OpenFile(filepath.Join(dir, recoveryPointFile), osRDWRCreate, 0o644)
	if err != nil {
		return nil, fmt.Errorf("segment: open recovery point: %w", err)
	}
	return f, nil
}
