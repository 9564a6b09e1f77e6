package eventlog

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/segment"
)

// The metadata log is partition 0 of this internal topic.
const (
	TopicName   = "__chronik_metadata"
	PartitionID = 0
)

// Defaults of Options.
const (
	DefaultCompressAbove    = 4 << 10
	DefaultSnapshotBytes    = 4 << 20
	DefaultSnapshotInterval = 10 * time.Minute
	// DefaultSegmentBytes is the metadata log's segment size: small, since
	// whole segments are deleted once snapshots cover them.
	DefaultSegmentBytes = 16 << 20
	// snapshotsKept is how many snapshots stay on disk: the newest, and one
	// to fall back on if it is damaged.
	snapshotsKept = 2
)

// Options configure a Log.
type Options struct {
	// Epoch is stamped on every batch as its partition leader epoch: the
	// controller's term. SetEpoch changes it.
	Epoch int32
	// CompressAbove zstd-compresses a batch whose records exceed this many
	// bytes; 0 means DefaultCompressAbove, negative never.
	CompressAbove int
	// SnapshotBytes takes a snapshot once this many bytes were appended
	// since the last one; 0 means DefaultSnapshotBytes, negative never.
	SnapshotBytes int64
	// SnapshotInterval takes a snapshot once this much time passed since
	// the last one (and something was appended); 0 means the default.
	SnapshotInterval time.Duration
	// Segment is the segment configuration of the log; nil means
	// segment.DefaultConfig with DefaultSegmentBytes and time retention off
	// (snapshots decide what old segments may go).
	Segment *segment.Config
	// Logger receives replay, snapshot and failure messages.
	Logger *slog.Logger
	// Now is the clock for record timestamps; nil means time.Now.
	Now func() time.Time
}

// ErrFailed: a write of the metadata log failed; the Log refuses appends
// until it is reopened (the controller must step down).
var ErrFailed = errors.New("eventlog: metadata log failed")

// Log is the metadata event log: __chronik_metadata-0 on a segment store,
// and the State replayed from it.
type Log struct {
	seg   *segment.Log
	store *segment.Store
	dir   string
	opts  Options
	log   *slog.Logger

	// wmu serialises appends. spec is the state with every accepted event
	// applied, durable or not: appends are validated against it, so that
	// concurrent appends share syncs yet each sees the ones before it.
	wmu     sync.Mutex
	spec    *State
	epoch   int32
	pending []*pendingBatch // accepted, not yet applied to state; offset order
	failed  error

	// amu serialises appliers of durable batches to state (lock order: amu,
	// then wmu or smu, never both).
	amu sync.Mutex

	// smu guards state: the durable events applied, what readers see.
	smu   sync.RWMutex
	state *State

	snapMu       sync.Mutex // one snapshot at a time
	sinceSnap    int64      // bytes appended since the last snapshot (under wmu)
	lastSnapshot time.Time  // under wmu
}

type pendingBatch struct {
	handle  *segment.Appended
	events  []Event
	next    int64 // offset after the batch
	applied bool  // under amu
}

// Open opens the metadata log in st, loads the newest valid snapshot and
// replays the log after it.
func Open(st *segment.Store, opts Options) (*Log, error) {
	if opts.CompressAbove == 0 {
		opts.CompressAbove = DefaultCompressAbove
	}
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = DefaultSnapshotBytes
	}
	if opts.SnapshotInterval == 0 {
		opts.SnapshotInterval = DefaultSnapshotInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg := segment.DefaultConfig()
	cfg.RetentionMs = -1
	cfg.SegmentBytes = DefaultSegmentBytes
	if opts.Segment != nil {
		cfg = *opts.Segment
	}
	seg, err := st.Open(TopicName, PartitionID, cfg)
	if err != nil {
		return nil, err
	}
	l := &Log{seg: seg, store: st, dir: seg.Dir(), opts: opts, log: opts.Logger.With("log", TopicName+"-0"), epoch: opts.Epoch, lastSnapshot: time.Now()}
	start := time.Now()
	state, snapFile, err := loadSnapshot(st.FS(), l.dir, l.log)
	if err != nil {
		return nil, err
	}
	if state.Offset < seg.StartOffset() {
		return nil, fmt.Errorf("eventlog: the log starts at offset %d but the newest usable snapshot covers only up to %d: metadata is missing", seg.StartOffset(), state.Offset)
	}
	snapOffset := state.Offset
	events, err := replay(seg, state, state.Offset)
	if err != nil {
		return nil, err
	}
	l.state, l.spec = state, state.Clone()
	l.log.Info("metadata replayed", "snapshot", filepath.Base(snapFile), "snapshot_offset", snapOffset, "events", events, "offset", state.Offset, "took", time.Since(start).Round(time.Microsecond))
	return l, nil
}

// Close waits for a snapshot in progress. The segment log belongs to the
// store, which closes it.
func (l *Log) Close() {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: closed", ErrFailed)
	}
}

// replay applies the durable batches of seg from offset to s, each batch
// all or nothing, and returns how many events it applied.
func replay(seg *segment.Log, s *State, offset int64) (int, error) {
	n := 0
	buf := make([]byte, 0, 1<<20)
	for off := offset; off < seg.HighWatermark(); {
		b, err := seg.Read(off, 1<<20, buf[:0])
		if err != nil {
			return n, fmt.Errorf("eventlog: replay at offset %d: %w", off, err)
		}
		for len(b) > 0 {
			h, err := segment.ParseHeader(b)
			if err != nil {
				return n, err
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			if h.LastOffset() < off {
				continue
			}
			if h.BaseOffset < off {
				return n, fmt.Errorf("eventlog: offset %d falls inside the batch %d..%d", off, h.BaseOffset, h.LastOffset())
			}
			events, _, err := decodeBatch(batch)
			if err != nil {
				return n, err
			}
			if err := applyOwned(s, events...); err != nil {
				return n, fmt.Errorf("eventlog: batch at offset %d does not apply to the state replayed before it: %w", h.BaseOffset, err)
			}
			s.Offset = h.LastOffset() + 1
			off = s.Offset
			n += len(events)
		}
	}
	return n, nil
}

// SetEpoch sets the leader epoch stamped on later batches.
func (l *Log) SetEpoch(epoch int32) {
	l.wmu.Lock()
	l.epoch = epoch
	l.wmu.Unlock()
}

// Append validates events against everything appended before them, writes
// them as one batch (all or nothing), waits until it is durable, applies
// it and returns the offset of its first event. An event that does not
// apply is refused (ErrRefused) and nothing is written.
func (l *Log) Append(events ...Event) (int64, error) {
	if len(events) == 0 {
		return 0, errors.New("eventlog: nothing to append")
	}
	p, err := l.accept(events)
	if err != nil {
		return 0, err
	}
	err = p.handle.Wait()
	if cerr := l.applyDurable(p); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return p.handle.Base, nil
}

// accept validates events against the speculative state and writes them.
func (l *Log) accept(events []Event) (*pendingBatch, error) {
	// Encoding needs no state: do it before taking the lock.
	batch := buildBatch(events, l.opts.Now().UnixMilli(), l.opts.CompressAbove)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.failed != nil {
		return nil, l.failed
	}
	t := tx{s: l.spec}
	for i, e := range events {
		if err := t.apply(e); err != nil {
			t.rollback()
			if len(events) > 1 {
				return nil, fmt.Errorf("event %d of %d (%s): %w", i+1, len(events), e.Type(), err)
			}
			return nil, fmt.Errorf("%s: %w", e.Type(), err)
		}
	}
	h, err := l.seg.Append(batch, l.epoch, -1)
	if err != nil {
		t.rollback()
		return nil, fmt.Errorf("eventlog: append: %w", err)
	}
	l.spec.Offset = h.Last + 1
	p := &pendingBatch{handle: h, events: events, next: h.Last + 1}
	l.pending = append(l.pending, p)
	l.sinceSnap += int64(len(batch))
	return p, nil
}

// applyDurable applies, in offset order, every pending batch that is
// durable. A batch that failed to become durable fails the log: the
// speculative state holds events the log does not. Appliers take amu, not
// wmu, so that appends go on meanwhile.
func (l *Log) applyDurable(p *pendingBatch) error {
	for {
		blocker, err := l.applyReady(p)
		if blocker == nil {
			return err
		}
		// An earlier batch is not resolved yet: p applies after it.
		<-blocker.handle.Done()
	}
}

// applyReady applies the resolved batches at the head of pending. It
// returns the unresolved batch that keeps p from being applied, if any.
func (l *Log) applyReady(p *pendingBatch) (*pendingBatch, error) {
	l.amu.Lock()
	defer l.amu.Unlock()
	if p.applied {
		return nil, nil // an earlier applier took it along
	}
	l.wmu.Lock()
	var ready []*pendingBatch
	var blocker *pendingBatch
	for _, q := range l.pending {
		if !resolved(q.handle) {
			blocker = q
			break
		}
		ready = append(ready, q)
	}
	l.wmu.Unlock()

	var failure error
	applied := 0
	l.smu.Lock()
	for _, q := range ready {
		if err := q.handle.Err(); err != nil {
			failure = fmt.Errorf("%w: batch at offset %d not durable: %v", ErrFailed, q.handle.Base, err)
			break
		}
		if err := Apply(l.state, q.events...); err != nil {
			failure = fmt.Errorf("%w: durable batch at offset %d does not apply: %v", ErrFailed, q.handle.Base, err)
			break
		}
		l.state.Offset = q.next
		q.applied = true
		applied++
	}
	l.smu.Unlock()

	l.wmu.Lock()
	defer l.wmu.Unlock()
	clear(l.pending[:applied])
	l.pending = l.pending[applied:]
	if failure != nil {
		l.failLocked(failure)
	}
	if applied > 0 {
		l.maybeSnapshotLocked()
	}
	switch {
	case p.applied:
		return nil, nil
	case l.failed != nil:
		return nil, l.failed
	}
	return blocker, nil
}

func resolved(a *segment.Appended) bool {
	select {
	case <-a.Done():
		return true
	default:
		return false
	}
}

func (l *Log) fs() segment.FS { return l.store.FS() }

func (l *Log) failLocked(err error) {
	if l.failed == nil {
		l.failed = err
		l.log.Error("metadata log failed; appends refused until it is reopened", "error", err)
	}
}

// View calls fn with the state of the durable events. fn must not keep
// the State (its maps change) but may keep the entities it finds.
func (l *Log) View(fn func(*State)) {
	l.smu.RLock()
	defer l.smu.RUnlock()
	fn(l.state)
}

// Offset is the offset of the next event: the log end.
func (l *Log) Offset() int64 {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.state.Offset
}

// Dir is the directory of the log and its snapshots.
func (l *Log) Dir() string { return l.dir }
