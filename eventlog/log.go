package eventlog

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
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
	// whole segments are deleted once snapshots cover them, yet above the
	// largest batch the log writes (storedBound of maxBatchRecords).
	DefaultSegmentBytes = 32 << 20
	// snapshotsKept is how many snapshots stay on disk: the newest, and one
	// to fall back on if it is damaged.
	snapshotsKept = 2
)

// Options configure a Log.
type Options struct {
	// Epoch is stamped on every batch as its partition leader epoch: the
	// controller's term. SetEpoch changes it; a replicated log takes it
	// from Lead.
	Epoch int32
	// CompressAbove zstd-compresses a batch whose records exceed this many
	// bytes; 0 means DefaultCompressAbove, negative never.
	CompressAbove int
	// SnapshotBytes takes a snapshot once this many bytes were appended
	// since the last one; 0 means DefaultSnapshotBytes. Negative turns
	// automatic snapshots off, SnapshotInterval's too: a snapshot deletes
	// the segments it covers, which the Raft fallback path replays.
	SnapshotBytes int64
	// SnapshotInterval takes a snapshot once this much time passed since
	// the last one (and something was appended); 0 means the default.
	SnapshotInterval time.Duration
	// KeepSegments: a snapshot does not delete the segments the older kept
	// snapshot covers; the owner does (Segment().DeleteSegmentsBefore) once
	// nothing replays them: the Raft fallback path, until Raft's log is
	// compacted past them.
	KeepSegments bool
	// Segment is the segment configuration of the log; nil means
	// segment.DefaultConfig with DefaultSegmentBytes and time retention off
	// (snapshots decide what old segments may go).
	Segment *segment.Config
	// Logger receives replay, snapshot and failure messages.
	Logger *slog.Logger
	// Now is the clock for record timestamps; nil means time.Now.
	Now func() time.Time
	// Replicated makes this one copy of a cluster's metadata log: the
	// readers' state takes events when Commit says so, not when they are
	// durable here (see AppendShipped, Commit, TruncateTo).
	Replicated bool
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

	// wmu guards spec, the queue of accepted groups and flushing. spec is
	// the state with every accepted event applied, durable or not: appends
	// are validated against it, so that concurrent appends share batches
	// and syncs yet each sees the ones before it. Lock order: wmu, then smu.
	wmu      sync.Mutex
	closed   bool
	spec     *State
	epoch    int32
	queue    []*group // accepted, not yet written; in order
	flushing bool     // a goroutine is writing the queue
	failed   error
	// leading: a replicated log takes appends (Lead, Follow).
	leading bool
	// wrote is closed and replaced when a batch is written (before it is
	// durable): the controller ships it then.
	wrote chan struct{}

	// smu guards state: the durable events applied, what readers see.
	smu   sync.RWMutex
	state *State
	// moved is closed and replaced whenever state moves on (under smu).
	moved chan struct{}

	// epochs are where each epoch's batches start (under wmu).
	epochs []epochStart
	// cmu serialises Commit and TruncateTo. Lock order: cmu, wmu, smu.
	cmu sync.Mutex
	// commitBuf is Commit's read buffer, kept between commits (under cmu):
	// a follower or controller commits once per change.
	commitBuf []byte

	// maxBatch bounds the records of a batch (batchBound): a larger
	// change is ErrTooLarge.
	maxBatch int

	snapMu       sync.Mutex // one snapshot at a time
	sinceSnap    int64      // bytes appended since the last snapshot (under wmu)
	lastSnapshot time.Time  // under wmu
}

// group is one Append's events: validated, waiting to be written.
type group struct {
	events []Event
	recs   []segment.Record // the events as records
	size   int              // recordsSize(recs)
	undo   tx               // how to take them out of spec again
	// grows: the group adds topics or partitions (see grows), and is written
	// only where the room kept for the other changes stays (keepRoom).
	grows bool
	done  chan struct{}
	base  int64 // offset of the first event, once written
	err   error
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
	// Every write (flush, AppendCommittedAll, a follower's shipped
	// batches) is waited for right away.
	cfg.WritersWait = true
	// Every batch the log may write, a change of up to its bound that does
	// not compress, must be accepted.
	bound := batchBound(cfg.SegmentBytes)
	cfg.MaxMessageBytes = max(cfg.MaxMessageBytes, storedBound(bound))
	seg, err := st.Open(TopicName, PartitionID, cfg)
	if err != nil {
		return nil, err
	}
	l := &Log{seg: seg, store: st, dir: seg.Dir(), opts: opts, log: opts.Logger.With("log", TopicName+"-0"), epoch: opts.Epoch, lastSnapshot: time.Now(),
		maxBatch: bound, wrote: make(chan struct{})}
	start := time.Now()
	state, snapFile, snapEpoch, err := loadSnapshot(st.FS(), l.dir, l.log)
	if err != nil {
		return nil, err
	}
	if state.Offset < seg.StartOffset() {
		return nil, fmt.Errorf("eventlog: the log starts at offset %d but the newest usable snapshot covers only up to %d: metadata is missing", seg.StartOffset(), state.Offset)
	}
	snapOffset := state.Offset
	spec := state
	if opts.Replicated {
		// The durable tail is not known to be committed: only spec takes it.
		spec = state.Clone()
	}
	// A replicated log's spec shares its entities with state, which the
	// tail must not change: it is applied copying what it changes.
	events, err := replayRange(seg, spec, state.Offset, seg.HighWatermark(), !opts.Replicated)
	if err != nil {
		return nil, err
	}
	if l.epochs, err = loadEpochs(seg, seg.StartOffset()); err != nil {
		return nil, err
	}
	if snapFile != "" && snapOffset > 0 {
		// What the snapshot covers ends with a batch of its epoch.
		switch {
		case len(l.epochs) > 0 && l.epochs[0].epoch == snapEpoch:
			l.epochs[0].start = min(l.epochs[0].start, snapOffset-1)
		case len(l.epochs) == 0 || l.epochs[0].start > snapOffset-1:
			l.epochs = append([]epochStart{{snapEpoch, snapOffset - 1}}, l.epochs...)
		}
	}
	l.state, l.spec, l.moved = state, spec, make(chan struct{})
	if !opts.Replicated {
		l.spec = state.Clone()
	}
	snapName := "none"
	if snapFile != "" {
		snapName = filepath.Base(snapFile)
	}
	msg, args := "metadata replayed", []any{"snapshot", snapName, "snapshot_offset", snapOffset, "events", events, "offset", state.Offset}
	if opts.Replicated && spec.Offset > state.Offset {
		msg = "metadata replayed: what it holds after offset is applied once the controller says it is committed"
		args = append(args, "held_to", spec.Offset)
	}
	l.log.Info(msg, append(args, "took", time.Since(start).Round(time.Microsecond))...)
	return l, nil
}

// Failed returns why the log stopped taking writes (a write or sync
// failed), or nil. A closed log is not failed.
func (l *Log) Failed() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.failed != nil && l.closed {
		return nil
	}
	return l.failed
}

// Close waits for a snapshot in progress. The segment log belongs to the
// store, which closes it.
func (l *Log) Close() {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.closed = true
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: closed", ErrFailed)
	}
}

// replayRange applies the durable batches of seg in [offset, to) to s, each
// batch all or nothing, and returns how many events it applied. With
// owned, nobody else holds s or its entities, and events may change them
// in place; otherwise s shares entities with a state readers see (a
// Clone), and changed ones are copied.
func replayRange(seg *segment.Log, s *State, offset, to int64, owned bool) (int, error) {
	n := 0
	buf := make([]byte, 0, 1<<20)
	for off := offset; off < to; {
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
			if h.BaseOffset >= to {
				return n, nil
			}
			if h.LastOffset() >= to {
				return n, fmt.Errorf("eventlog: offset %d falls inside the batch %d..%d", to, h.BaseOffset, h.LastOffset())
			}
			events, _, err := decodeBatch(batch)
			if err != nil {
				return n, err
			}
			apply := Apply
			if owned {
				apply = applyOwned
			}
			if err := apply(s, events...); err != nil {
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
// them as part of one batch (all or nothing), waits until it is durable,
// applies it and returns the offset of its first event. An event that does
// not apply is refused (ErrRefused) and nothing is written.
//
// Groups appended while a batch is being written and synced go, in order,
// into the next batch: one write and one sync for all of them, the way the
// segment committer shares syncs, one level up.
func (l *Log) Append(events ...Event) (int64, error) {
	if len(events) == 0 {
		return 0, errors.New("eventlog: nothing to append")
	}
	g := &group{events: events, recs: eventRecords(events), done: make(chan struct{})}
	if g.size = recordsSize(g.recs); g.size > l.maxBatch {
		return 0, fmt.Errorf("%w: %d events, %d bytes, at most %d", ErrTooLarge, len(events), g.size, l.maxBatch)
	}
	l.wmu.Lock()
	if err := l.refusedLocked(); err != nil {
		l.wmu.Unlock()
		return 0, err
	}
	if err := l.applyGroupLocked(g); err != nil {
		l.wmu.Unlock()
		return 0, err
	}
	l.queue = append(l.queue, g)
	flush := !l.flushing
	l.flushing = true
	l.wmu.Unlock()
	if flush {
		l.flush()
	}
	<-g.done
	return g.base, g.err
}

// applyGroupLocked applies g's events to spec, or none of them and says
// which did not apply. Callers hold wmu.
func (l *Log) applyGroupLocked(g *group) error {
	g.undo, g.grows = tx{s: l.spec}, false
	for i, e := range g.events {
		g.grows = g.grows || grows(l.spec, e)
		if err := g.undo.apply(e); err != nil {
			g.undo.rollback()
			if len(g.events) > 1 {
				return fmt.Errorf("event %d of %d (%s): %w", i+1, len(g.events), e.Type(), err)
			}
			return fmt.Errorf("%s: %w", e.Type(), err)
		}
	}
	return nil
}

// grows reports whether e, applied to s, adds a topic or a partition.
func grows(s *State, e Event) bool {
	switch e := e.(type) {
	case *TopicCreated:
		return true
	case *PartitionChanged:
		tp, ok := s.Topics[e.Topic]
		return ok && int(e.Partition) == len(tp.Partitions)
	}
	return false
}

// keepRoom is the room on disk a batch that adds topics or partitions
// leaves allocated after it in the log's segment (segment.Log.AppendKeeping):
// on a full disk those fail first, and the changes that free space or keep
// the cluster running (deleting topics, configs such as retention,
// fencing, leader moves, a new controller's first batch) still have
// room: about 600 TopicDeleted events.
const keepRoom = 64 << 10

// flush writes the queue as batches, one at a time, until it is empty.
func (l *Log) flush() {
	for {
		l.wmu.Lock()
		if len(l.queue) == 0 {
			l.flushing = false
			l.wmu.Unlock()
			return
		}
		if err := l.refusedLocked(); err != nil {
			// The node stepped down while these waited.
			l.flushing = false
			l.refuseQueueLocked(err)
			return
		}
		// As many groups as fit in one batch, the rest for the next; those
		// that add topics or partitions in batches of their own (keepRoom).
		n, size, grow := 1, l.queue[0].size, l.queue[0].grows
		for n < len(l.queue) && size+l.queue[n].size <= l.maxBatch && l.queue[n].grows == grow {
			size += l.queue[n].size
			n++
		}
		groups := l.queue[:n:n]
		if n == len(l.queue) {
			l.queue = nil
		} else {
			// A copy: the written groups must not stay reachable.
			l.queue = slices.Clone(l.queue[n:])
		}
		var events []Event
		var recs []segment.Record
		for _, g := range groups {
			events = append(events, g.events...)
			recs = append(recs, g.recs...)
		}
		batch := recordsBatch(recs, l.opts.Now().UnixMilli(), l.opts.CompressAbove)
		keep := int64(0)
		if grow {
			keep = keepRoom
		}
		h, err := l.seg.AppendKeeping(batch, l.epoch, -1, keep)
		if err != nil {
			// Nothing was written: these groups are refused, and those
			// accepted after them checked again without them.
			l.refuseBatchLocked(groups, fmt.Errorf("eventlog: append: %w", err))
			continue
		}
		l.spec.Offset = h.Last + 1
		l.sinceSnap += int64(len(batch))
		l.noteEpochLocked(l.epoch, h.Base)
		close(l.wrote)
		l.wrote = make(chan struct{})
		l.wmu.Unlock()

		err = h.Wait()
		if !l.opts.Replicated {
			// One node: durable is committed.
			l.smu.Lock()
			if err == nil {
				if err = Apply(l.state, events...); err == nil {
					l.appliedLocked(h.Last + 1)
				}
			}
			l.smu.Unlock()
		}
		l.wmu.Lock()
		if err != nil {
			l.failLocked(fmt.Errorf("%w: batch at offset %d: %v", ErrFailed, h.Base, err))
		} else {
			l.maybeSnapshotLocked()
		}
		failed := l.failed
		l.wmu.Unlock()
		off := h.Base
		for _, g := range groups {
			g.base, g.err = off, failed
			off += int64(len(g.events))
			close(g.done)
		}
		if failed != nil {
			l.failQueue()
			return
		}
	}
}

// refusedLocked is why the log takes no appends now, or nil (wmu held).
func (l *Log) refusedLocked() error {
	switch {
	case l.failed != nil:
		return l.failed
	case l.opts.Replicated && !l.leading:
		return ErrNotLeading
	}
	return nil
}

// refuseQueueLocked takes every queued group out of spec again, newest
// first, and answers each with err. It is called with wmu held and
// returns with it released.
func (l *Log) refuseQueueLocked(err error) {
	groups := l.queue
	l.queue = nil
	l.refuseBatchLocked(groups, err) // nothing queued after them
}

// refuseBatchLocked refuses the groups of a batch that could not be
// written, and checks the queued groups again without them: those that
// still apply stay queued (on a full disk, a deletion queued behind
// creations that find no room). It unlocks wmu.
func (l *Log) refuseBatchLocked(batch []*group, err error) {
	rest := l.queue
	for _, g := range slices.Backward(slices.Concat(batch, rest)) {
		g.undo.rollback()
	}
	l.queue = nil
	refused := batch
	for _, g := range rest {
		if err := l.applyGroupLocked(g); err != nil {
			g.err = err
			refused = append(refused, g)
			continue
		}
		l.queue = append(l.queue, g)
	}
	l.wmu.Unlock()
	for _, g := range refused {
		if g.err == nil {
			g.err = err
		}
		close(g.done)
	}
}

// failQueue fails every queued group once the log has failed.
func (l *Log) failQueue() {
	l.wmu.Lock()
	groups := l.queue
	l.queue = nil
	l.flushing = false
	failed := l.failed
	l.wmu.Unlock()
	for _, g := range groups {
		g.err = failed
		close(g.done)
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

// Segment is the segment log holding the events, for serving it to Kafka
// consumers as the topic __chronik_metadata. Appending to it directly
// would bypass validation: only read it.
func (l *Log) Segment() *segment.Log { return l.seg }

// Dir is the directory of the log and its snapshots.
func (l *Log) Dir() string { return l.dir }
