package eventlog

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/chronik-stream/chronik/segment"
)

// The Raft fallback path (--disable-metadata-wal): metadata changes travel
// as Raft log entries, each holding one batch built by EncodeBatch, and
// every node writes each committed entry's batch to its metadata log in
// Raft's order with AppendCommitted. All nodes start from the same log and
// take the same batches in the same order, so their logs are identical,
// offsets included. A batch whose events do not apply (two proposals that
// conflict) is refused alike everywhere; the node writes an empty NoOp
// batch in its place, so that the n-th entry is always the n-th batch.

// EncodeBatch builds the batch a proposal carries: the events, stamped
// with this node's clock (the same bytes then land on every node).
func (l *Log) EncodeBatch(events ...Event) ([]byte, error) {
	recs := eventRecords(events)
	if size := recordsSize(recs); size > l.maxBatch {
		return nil, fmt.Errorf("%w: %d events, %d bytes, at most %d", ErrTooLarge, len(events), size, l.maxBatch)
	}
	return recordsBatch(recs, l.opts.Now().UnixMilli(), l.opts.CompressAbove), nil
}

// ErrReplayed: AppendCommitted found the batch already in the log (a
// restart re-applying Raft entries written before it).
var ErrReplayed = errors.New("eventlog: batch already in the log")

// ErrDiverged: AppendCommitted found another batch where the committed one
// goes: this log holds what the cluster's committed history does not.
var ErrDiverged = errors.New("eventlog: the log holds another batch where a committed one goes")

// AppendCommitted writes a committed batch at the log end with the given
// epoch (the entry's term), syncs it and applies it to the state. A batch
// whose events do not apply is replaced by a NoOp batch and ErrRefused is
// returned. If the log already holds these bytes at position replay (a
// restart re-applying entries), nothing is written and ErrReplayed comes
// back with the next position.
func (l *Log) AppendCommitted(batch []byte, epoch int32, replay int64) (next int64, err error) {
	nexts, errs := l.AppendCommittedAll([]CommittedBatch{{Batch: batch, Epoch: epoch}}, replay)
	return nexts[0], errs[0]
}

// CommittedBatch is a committed Raft entry's batch and the entry's term.
type CommittedBatch struct {
	Batch []byte
	Epoch int32
}

// AppendCommittedAll is AppendCommitted for the entries Raft committed
// together, in order, with one sync for all of them: the position after
// each and its outcome. The readers' state takes them once they are
// durable.
func (l *Log) AppendCommittedAll(batches []CommittedBatch, replay int64) (next []int64, errs []error) {
	next, errs = make([]int64, len(batches)), make([]error, len(batches))
	type written struct {
		i       int
		events  []Event
		refused bool
		a       *segment.Appended
		size    int
	}
	var ws []written
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for i, cb := range batches {
		next[i] = replay
		events, _, err := decodeBatch(cb.Batch)
		switch {
		case err != nil:
			errs[i] = err
			continue
		case l.failed != nil:
			errs[i] = l.failed
			continue
		case replay < l.seg.EndOffset():
			same, n, err := l.sameBatchAt(replay, cb.Batch)
			if err == nil && !same {
				// A refused entry left a NoOp batch in its place.
				same, n, err = l.sameBatchAt(replay, noopFor(cb.Batch))
			}
			switch {
			case err != nil:
				errs[i] = err
			case same:
				replay += n
				next[i], errs[i] = replay, ErrReplayed
			default:
				errs[i] = fmt.Errorf("%w (offset %d: %s)", ErrDiverged, replay, l.divergedAt(replay, cb))
			}
			continue
		}
		undo := tx{s: l.spec}
		refused := false
		for _, e := range events {
			if err := undo.apply(e); err != nil {
				undo.rollback()
				refused = true
				break
			}
		}
		batch := cb.Batch
		if refused {
			batch = noopFor(batch)
		}
		// At replay: a failed sync may have dropped the batches written
		// before, whose sync failed alone (only the last is waited for).
		a, err := l.seg.AppendAt(batch, cb.Epoch, -1, replay)
		if err != nil {
			if !refused {
				undo.rollback()
			}
			l.failLocked(fmt.Errorf("%w: append committed batch: %v", ErrFailed, err))
			errs[i] = l.failed
			continue
		}
		l.spec.Offset = a.Last + 1
		l.noteEpochLocked(cb.Epoch, a.Base)
		ws = append(ws, written{i, events, refused, a, len(batch)})
		replay = a.Last + 1
		next[i] = replay
	}
	if len(ws) == 0 {
		return next, errs
	}
	// One sync covers every batch before the last.
	if err := ws[len(ws)-1].a.Wait(); err != nil {
		l.failLocked(fmt.Errorf("%w: sync committed batches: %v", ErrFailed, err))
		for _, w := range ws {
			next[w.i], errs[w.i] = ws[0].a.Base, l.failed
		}
		return next, errs
	}
	l.smu.Lock()
	for _, w := range ws {
		if !w.refused {
			if err := Apply(l.state, w.events...); err != nil {
				l.smu.Unlock()
				l.failLocked(fmt.Errorf("%w: committed batch at %d applies to spec but not to state: %v", ErrFailed, w.a.Base, err))
				for _, w := range ws {
					errs[w.i] = l.failed
				}
				return next, errs
			}
		}
		l.appliedLocked(w.a.Last + 1)
		l.sinceSnap += int64(w.size)
		if w.refused {
			errs[w.i] = ErrRefused
		}
	}
	l.smu.Unlock()
	l.maybeSnapshotLocked()
	return next, errs
}

// sameBatchAt reports whether the batch stored at offset has batch's
// records (its offset and epoch fields aside), and how many offsets it
// spans.
func (l *Log) sameBatchAt(offset int64, batch []byte) (bool, int64, error) {
	b, err := l.seg.Read(offset, 1, nil)
	if err != nil {
		return false, 0, err
	}
	h, err := segment.ParseHeader(b)
	if err != nil {
		return false, 0, err
	}
	stored := b[:h.Size()]
	n := h.LastOffset() - h.BaseOffset + 1
	if h.BaseOffset != offset || len(stored) != len(batch) {
		return false, n, nil
	}
	// Bytes 0-7 (base offset), 12-15 (leader epoch) and the CRC (17-20,
	// over bytes 21 on) are what an append sets; the rest must match.
	return bytes.Equal(stored[21:], batch[21:]) && bytes.Equal(stored[8:12], batch[8:12]) && stored[16] == batch[16], n, nil
}

// divergedAt says how the batch stored at offset differs from the
// committed one that goes there, for the error that reports it.
func (l *Log) divergedAt(offset int64, cb CommittedBatch) string {
	describe := func(b []byte, epoch int32) string {
		h, err := segment.ParseHeader(b)
		if err != nil {
			return "unreadable: " + err.Error()
		}
		return fmt.Sprintf("epoch %d, %d records, %d bytes, timestamp %d", epoch, h.RecordCount, h.Size(), h.BaseTimestamp)
	}
	stored, err := l.seg.Read(offset, 1, nil)
	if err != nil {
		return fmt.Sprintf("the stored batch is unreadable: %v", err)
	}
	h, err := segment.ParseHeader(stored)
	if err != nil {
		return fmt.Sprintf("the stored batch is unreadable: %v", err)
	}
	return fmt.Sprintf("stored at %d: %s; committed: %s", h.BaseOffset, describe(stored, h.PartitionLeaderEpoch), describe(cb.Batch, cb.Epoch))
}

// noopFor is the batch written in place of a refused entry's batch: a
// NoOp with its timestamp, the same bytes on every node and on replay.
func noopFor(batch []byte) []byte {
	return buildBatch([]Event{&NoOp{}}, decodedTimestamp(batch), -1)
}

func decodedTimestamp(batch []byte) int64 {
	h, err := segment.ParseHeader(batch)
	if err != nil {
		return 0
	}
	return h.BaseTimestamp
}
