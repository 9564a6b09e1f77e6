package eventlog

import (
	"errors"
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/segment"
)

// A replicated Log (Options.Replicated) is one copy of a cluster's
// metadata log. Events become durable here when appended (by the
// controller) or shipped (to a follower), but the readers' state (View)
// takes them only when Commit says a majority holds them. At open the
// state is the newest snapshot (snapshots hold committed state only); the
// durable tail after it waits for the first Commit. spec, which validates
// the controller's appends, is the state plus that tail.

// ErrNotLeading: a replicated log takes appends only while its node is
// the controller (Lead), so that batches of an epoch come from that
// epoch's controller alone, and none from a node after it stepped down.
var ErrNotLeading = errors.New("eventlog: this copy of the metadata log follows a controller; only the controller appends")

// Lead lets a replicated log take appends, stamped with epoch: its node is
// the controller of that epoch. A replicated log opens following.
func (l *Log) Lead(epoch int32) {
	l.wmu.Lock()
	l.epoch, l.leading = epoch, true
	l.wmu.Unlock()
}

// Follow stops a replicated log taking appends: its node is no longer the
// controller. Appends accepted and not yet written are refused with
// ErrNotLeading; a batch written before stays, uncommitted until a
// controller commits it or has it cut.
func (l *Log) Follow() {
	l.wmu.Lock()
	l.leading = false
	l.wmu.Unlock()
}

// ErrLeading: a log takes no shipped batches, truncation or snapshot
// while its node is the controller (Lead) or still writes what it took as
// one: a controller of an older epoch that does not yet know it was
// deposed must not cut the current controller's log.
var ErrLeading = errors.New("eventlog: this log is the controller's")

// appendingLocked reports whether the log leads or still writes appends
// (wmu held).
func (l *Log) appendingLocked() bool {
	return l.leading || l.flushing || len(l.queue) > 0
}

// Errors of AppendShipped.
var (
	// ErrNotContiguous: a shipped batch does not start at this log's end,
	// or the batch before it is of another epoch than the controller's: the
	// logs diverge, or this one has a gap.
	ErrNotContiguous = errors.New("eventlog: shipped batch does not continue this log")
	// ErrCommitted: a truncation would remove committed events.
	ErrCommitted = errors.New("eventlog: cannot remove committed events")
)

// epochStart is where an epoch's batches begin in the log.
type epochStart struct {
	epoch int32
	start int64
}

// End returns the log end (the offset the next batch gets) and the epoch
// of the last batch (-1 for an empty log).
func (l *Log) End() (int64, int32) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.seg.EndOffset(), l.lastEpochLocked()
}

// ViewAll calls fn with the state of every event this log holds or has
// accepted, committed or not: what the controller checks appends against.
// fn must neither keep nor change it. Readers of the cluster's metadata
// use View, which shows committed events only.
func (l *Log) ViewAll(fn func(*State)) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	fn(l.spec)
}

// Written returns a channel that is closed when this log next writes a
// batch of its own (as the controller), before the batch is durable: the
// controller ships batches from then on (segment.Log.ReadWritten).
func (l *Log) Written() <-chan struct{} {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.wrote
}

func (l *Log) lastEpochLocked() int32 {
	if len(l.epochs) == 0 {
		return -1
	}
	return l.epochs[len(l.epochs)-1].epoch
}

// EpochBefore is the epoch of the batch that ends at offset-1 (-1 if none):
// what a batch shipped from offset must follow.
func (l *Log) EpochBefore(offset int64) int32 {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.epochBeforeLocked(offset)
}

// epochBeforeLocked is the epoch of the batch that ends at offset-1.
func (l *Log) epochBeforeLocked(offset int64) int32 {
	e := int32(-1)
	for _, x := range l.epochs {
		if x.start >= offset {
			break
		}
		e = x.epoch
	}
	return e
}

// EpochEnd answers a follower whose last batch is of epoch: where that
// epoch ends in this log (the start of the next higher epoch, or the log
// end); the follower keeps what is before it (Kafka's
// OffsetsForLeaderEpoch). An epoch this log never had ends where the first
// higher one starts.
func (l *Log) EpochEnd(epoch int32) int64 {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for _, x := range l.epochs {
		if x.epoch > epoch {
			return x.start
		}
	}
	return l.seg.EndOffset()
}

// EpochFor answers a follower whose last batch is of epoch e: the largest
// epoch of this log not above e, and where it ends here. The follower keeps
// what it has before both that end and its own first batch of a later
// epoch (see CutFor). ok is false when this log has no such epoch (the
// follower keeps nothing it has after this log's start).
func (l *Log) EpochFor(e int32) (epoch int32, end int64, ok bool) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for i := len(l.epochs) - 1; i >= 0; i-- {
		if x := l.epochs[i]; x.epoch <= e {
			end := l.seg.EndOffset()
			if i+1 < len(l.epochs) {
				end = l.epochs[i+1].start
			}
			return x.epoch, end, true
		}
	}
	return -1, l.seg.StartOffset(), false
}

// CutFor is where a follower truncates when the controller answered
// EpochFor with (epoch, end): before the controller's end of that epoch and
// before its own first batch of a later epoch.
func (l *Log) CutFor(epoch int32, end int64) int64 {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	cut := min(end, l.seg.EndOffset())
	for _, x := range l.epochs {
		if x.epoch > epoch {
			cut = min(cut, x.start)
			break
		}
	}
	return cut
}

// noteEpochLocked records the epoch of a batch written at base.
func (l *Log) noteEpochLocked(epoch int32, base int64) {
	if epoch != l.lastEpochLocked() {
		l.epochs = append(l.epochs, epochStart{epoch, base})
	}
}

// AppendShipped writes a batch the controller shipped, as it is (offsets,
// epoch and bytes): it must start at this log's end, and prevEpoch (the
// epoch of the controller's batch before it) must be the epoch of this
// log's last batch. Its events must apply after everything before them.
// Wait on the result before acknowledging; Commit applies the events.
func (l *Log) AppendShipped(batch []byte, prevEpoch int32) (*segment.Appended, error) {
	h, err := segment.ValidateBatch(batch, 0)
	if err != nil {
		return nil, fmt.Errorf("eventlog: shipped batch: %w", err)
	}
	events, _, err := decodeBatch(batch)
	if err != nil {
		return nil, err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	switch {
	case l.failed != nil:
		return nil, l.failed
	case !l.opts.Replicated:
		return nil, errors.New("eventlog: only a replicated log takes shipped batches")
	case l.appendingLocked():
		return nil, ErrLeading
	}
	end, last := l.seg.EndOffset(), l.lastEpochLocked()
	if h.BaseOffset != end || prevEpoch != last {
		return nil, fmt.Errorf("%w: batch at %d after epoch %d, this log ends at %d after epoch %d", ErrNotContiguous, h.BaseOffset, prevEpoch, end, last)
	}
	undo := tx{s: l.spec}
	for _, e := range events {
		if err := undo.apply(e); err != nil {
			undo.rollback()
			return nil, fmt.Errorf("eventlog: shipped batch at %d does not apply: %w", h.BaseOffset, err)
		}
	}
	// At the offset checked above: a failed sync of the batches before
	// may have dropped them since (only the last of a frame is waited
	// for), and the log failed would not be told.
	a, err := l.seg.AppendAt(batch, h.PartitionLeaderEpoch, -1, h.BaseOffset)
	if err != nil {
		undo.rollback()
		err = fmt.Errorf("eventlog: append shipped batch: %w", err)
		if errors.Is(err, segment.ErrEndMoved) {
			l.failLocked(fmt.Errorf("%w: %v", ErrFailed, err))
			return nil, l.failed
		}
		return nil, err
	}
	l.spec.Offset = a.Last + 1
	l.sinceSnap += int64(len(batch))
	l.noteEpochLocked(h.PartitionLeaderEpoch, a.Base)
	return a, nil
}

// WaitShipped waits until a batch AppendShipped took (and every one before
// it) is durable. If the sync fails the log fails, as it does when the
// sync of its own batch fails: the segment has dropped what was not
// durable, but the tail's state still holds its events, so every batch
// shipped again would be refused as not applying, and the node would stay
// behind for good. A failed log makes the node leave the quorum and start
// again from what its disk holds.
func (l *Log) WaitShipped(a *segment.Appended) error {
	err := a.Wait()
	if err == nil {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.failLocked(fmt.Errorf("%w: shipped batch at offset %d: %v", ErrFailed, a.Base, err))
	return l.failed
}

// Committed is the commit point: the offset after the last event the
// readers' state holds.
func (l *Log) Committed() int64 {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.state.Offset
}

// appliedLocked records that the readers' state holds every event before
// next, and wakes the waiters of WaitApplied (smu held).
func (l *Log) appliedLocked(next int64) {
	l.state.Offset = next
	l.movedLocked()
}

// movedLocked wakes the waiters of WaitApplied (smu held).
func (l *Log) movedLocked() {
	close(l.moved)
	l.moved = make(chan struct{})
}

// Moved returns a channel that is closed when the readers' state next
// moves (a commit applied, a snapshot installed).
func (l *Log) Moved() <-chan struct{} {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.moved
}

// HoldsDurable reports whether this log holds, durably, the batch of
// epoch that ends before offset end: the same batch as any other log that
// holds one of that epoch there, since one controller writes each epoch
// and every log takes its batches in order.
func (l *Log) HoldsDurable(end int64, epoch int32) bool {
	l.wmu.Lock() // truncations take it: the two reads agree
	defer l.wmu.Unlock()
	return l.seg.HighWatermark() >= end && l.epochBeforeLocked(end) == epoch
}

// BatchCommitted reports, for a commit point at end or past it, whether
// the batch of epoch that ends before offset end is the one committed
// there; false too where the log cannot tell. Where a snapshot covers end,
// the log keeps no epochs before the snapshot's last batch, but that
// batch tells when it is of the same epoch: it continues, as committed
// history, the log of the controller that wrote the batch (logs that
// agree at an offset and epoch agree before it). One of an earlier epoch
// has no batch of that epoch before it; one of a later epoch cannot tell.
func (l *Log) BatchCommitted(end int64, epoch int32) bool {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if len(l.epochs) == 0 {
		return false
	}
	if e := l.epochBeforeLocked(end); e >= 0 {
		return e == epoch
	}
	return l.epochs[0].epoch == epoch
}

// WaitApplied waits until the readers' state holds every event before
// offset, or timeout has passed, and reports whether it does.
func (l *Log) WaitApplied(offset int64, timeout time.Duration) bool {
	var expired <-chan time.Time
	for {
		l.smu.RLock()
		done, moved := l.state.Offset >= offset, l.moved
		l.smu.RUnlock()
		if done {
			return true
		}
		if expired == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-moved:
		case <-expired:
			return false
		}
	}
}

// Commit applies the durable events before offset (a batch boundary) to
// the readers' state. Offsets at or below the commit point are no-ops;
// offsets beyond what is durable here are cut to it.
func (l *Log) Commit(offset int64) error {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	offset = min(offset, l.seg.HighWatermark())
	l.smu.RLock()
	from := l.state.Offset
	l.smu.RUnlock()
	if offset <= from {
		return nil
	}
	if err := l.commitRange(from, offset); err != nil {
		return err
	}
	l.wmu.Lock()
	l.maybeSnapshotLocked()
	l.wmu.Unlock()
	return nil
}

// commitRange applies the batches in [from, to) to the readers' state in
// place, each batch all or nothing (Apply), so that a commit costs what it
// applies, not a copy of the state.
func (l *Log) commitRange(from, to int64) error {
	buf := l.commitBuf
	defer func() {
		if cap(buf) <= 1<<20 {
			l.commitBuf = buf[:0] // events copy what they keep
		}
	}()
	for off := from; off < to; {
		b, err := l.seg.Read(off, 1<<20, buf[:0])
		buf = b
		if err != nil {
			return fmt.Errorf("eventlog: commit at offset %d: %w", off, err)
		}
		for len(b) > 0 && off < to {
			h, err := segment.ParseHeader(b)
			if err != nil {
				return err
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			if h.BaseOffset != off || h.LastOffset() >= to {
				return fmt.Errorf("eventlog: commit point %d is not a batch boundary (batch %d..%d)", to, h.BaseOffset, h.LastOffset())
			}
			events, _, err := decodeBatch(batch)
			if err != nil {
				return err
			}
			l.smu.Lock()
			err = Apply(l.state, events...)
			if err == nil {
				l.appliedLocked(h.LastOffset() + 1)
			}
			l.smu.Unlock()
			if err != nil {
				return fmt.Errorf("eventlog: committed batch at offset %d does not apply: %w", h.BaseOffset, err)
			}
			off = h.LastOffset() + 1
		}
	}
	return nil
}

// TruncateTo removes the uncommitted events from offset on (a batch
// boundary): a follower's tail that diverges from the new controller's.
func (l *Log) TruncateTo(offset int64) error {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.appendingLocked() {
		return fmt.Errorf("cannot truncate: %w", ErrLeading)
	}
	if committed := l.Committed(); offset < committed {
		return fmt.Errorf("%w: truncating to %d would remove events up to the commit point %d", ErrCommitted, offset, committed)
	}
	if offset >= l.seg.EndOffset() {
		return nil
	}
	if err := l.seg.TruncateTo(offset); err != nil {
		return err
	}
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].start >= offset {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	// spec: the committed state plus what is left of the tail.
	l.smu.RLock()
	spec := l.state.Clone()
	l.smu.RUnlock()
	if _, err := replayRange(l.seg, spec, spec.Offset, offset, false); err != nil {
		l.failLocked(fmt.Errorf("%w: after truncating to %d: %v", ErrFailed, offset, err))
		return l.failed
	}
	l.spec = spec
	return nil
}

// InstallSnapshot replaces this follower's log with a controller's
// snapshot: a follower too far behind, whose next batches the controller no
// longer has (on the Raft fallback path: whose Raft entries the leader
// compacted). The snapshot is written (temporary file, sync, rename), the
// log emptied to restart at the snapshot's offset, and the state becomes
// the snapshot's. A snapshot at or below the commit point is ignored.
func (l *Log) InstallSnapshot(data []byte) error {
	snap, err := DecodeShippedSnapshot(data)
	if err != nil {
		return err
	}
	return l.InstallDecoded(snap)
}

// ShippedSnapshot is a controller's snapshot, decoded (and so checked)
// before it is installed.
type ShippedSnapshot struct {
	state *State
	epoch int32
	data  []byte
}

// DecodeShippedSnapshot decodes a controller's snapshot for
// InstallDecoded: the work of an install that needs no lock of the log's
// (a large snapshot takes a while).
func DecodeShippedSnapshot(data []byte) (*ShippedSnapshot, error) {
	state, epoch, err := DecodeSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("eventlog: install snapshot: %w", err)
	}
	return &ShippedSnapshot{state, epoch, data}, nil
}

// InstallDecoded is InstallSnapshot of a snapshot DecodeShippedSnapshot
// decoded.
func (l *Log) InstallDecoded(snap *ShippedSnapshot) error {
	state, epoch, data := snap.state, snap.epoch, snap.data
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.cmu.Lock()
	defer l.cmu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	switch {
	case l.appendingLocked():
		return fmt.Errorf("cannot install a snapshot: %w", ErrLeading)
	case state.Offset <= l.Committed():
		return nil
	}
	if err := writeSnapshot(l.fs(), l.dir, SnapshotName(state.Offset, epoch), data); err != nil {
		return err
	}
	if err := l.seg.ResetTo(state.Offset); err != nil {
		l.failLocked(fmt.Errorf("%w: install snapshot at %d: %v", ErrFailed, state.Offset, err))
		return l.failed
	}
	l.epochs = []epochStart{{epoch, state.Offset - 1}}
	l.spec = state.Clone()
	l.smu.Lock()
	l.state = state
	l.movedLocked()
	l.smu.Unlock()
	l.log.Info("installed a snapshot from the controller", "offset", state.Offset, "epoch", epoch)
	return nil
}

// loadEpochs reads the epoch of every batch from offset on.
func loadEpochs(seg *segment.Log, from int64) ([]epochStart, error) {
	var out []epochStart
	buf := make([]byte, 0, 1<<20)
	for off := from; off < seg.HighWatermark(); {
		b, err := seg.Read(off, 1<<20, buf[:0])
		if err != nil {
			return nil, fmt.Errorf("eventlog: read epochs at %d: %w", off, err)
		}
		for len(b) > 0 {
			h, err := segment.ParseHeader(b)
			if err != nil {
				return nil, err
			}
			if len(out) == 0 || out[len(out)-1].epoch != h.PartitionLeaderEpoch {
				out = append(out, epochStart{h.PartitionLeaderEpoch, h.BaseOffset})
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out, nil
}
