package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// Follower takes the metadata log a controller ships: serve it the
// connections of stream StreamMetadata.
type Follower struct {
	log *eventlog.Log
	lg  *slog.Logger

	// term, if set, is this node's current Raft term: a controller of an
	// older epoch was deposed, whether or not this node has heard from the
	// new one (it may have voted for it), and is refused as Raft refuses
	// its messages.
	term func() int32

	mu       sync.Mutex
	maxEpoch int32    // highest controller epoch seen: lower ones are refused
	current  net.Conn // the controller's connection being served
	cut      func(id int32) bool
}

// NewFollower serves log, which must be replicated (eventlog.Options).
func NewFollower(log *eventlog.Log, lg *slog.Logger) *Follower {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	// A controller older than the last batch this node holds was deposed
	// (batches of a newer epoch exist), also if this node restarted since
	// it served the newer one.
	_, last := log.End()
	return &Follower{log: log, lg: lg, maxEpoch: last}
}

// lead is called when this node becomes the controller of epoch: a
// controller of an older one is refused from now on, and its session, if
// one runs, ends.
func (f *Follower) lead(epoch int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch > f.maxEpoch {
		f.maxEpoch = epoch
		if f.current != nil {
			f.current.Close()
		}
	}
}

// Serve runs one controller's shipping session on c (after its stream
// type byte) until it ends. A controller of a newer epoch takes over from
// an older one; one of an older epoch is refused.
func (f *Follower) Serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReaderSize(c, 64<<10), bufio.NewWriter(c)
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		f.lg.Warn("metadata shipping: refusing", "remote", c.RemoteAddr(), "reason", msg)
		writeFrame(w, kindError, msg)
	}
	fr, err := readFrame(r)
	if err != nil || fr.kind != kindHello {
		return
	}
	epoch, from := fr.i32(), fr.i32()
	if fr.done() != nil {
		return
	}
	// The term is read before mu is taken: it takes the node's lock, which
	// the node holds while it takes mu (SetCut).
	term := int32(-1)
	if f.term != nil {
		term = f.term()
	}
	f.mu.Lock()
	if f.cut != nil && f.cut(from) {
		f.mu.Unlock()
		return
	}
	if epoch < f.maxEpoch {
		f.mu.Unlock()
		fail("controller %d's epoch %d is older than epoch %d", from, epoch, f.maxEpoch)
		return
	}
	if epoch < term {
		f.mu.Unlock()
		fail("controller %d's epoch %d is older than this node's Raft term %d", from, epoch, term)
		return
	}
	f.maxEpoch = epoch
	if f.current != nil {
		f.current.Close() // an older session of this or an earlier controller
	}
	f.current = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.current == c {
			f.current = nil
		}
		f.mu.Unlock()
	}()

	state := func(kind byte) error {
		end, last := f.log.End()
		return writeFrame(w, kind, end, last)
	}
	if state(kindState) != nil {
		return
	}
	var snap snapshotParts
	for {
		fr, err := readFrame(r)
		if err != nil {
			return
		}
		if snap.pending() && fr.kind != kindSnapshot {
			fail("a frame of kind %d amid a snapshot's parts", fr.kind)
			return
		}
		switch fr.kind {
		case kindEpoch:
			e, end := fr.i32(), fr.i64()
			if fr.done() != nil {
				return
			}
			cut := f.log.CutFor(e, end)
			if err := f.log.TruncateTo(cut); err != nil {
				fail("cannot truncate to %d: %v", cut, err)
				return
			}
			if state(kindState) != nil {
				return
			}
		case kindBatch:
			prev, commit := fr.i32(), fr.i64()
			batches := fr.rest()
			if fr.done() != nil {
				return
			}
			if err := f.appendBatches(batches, prev); err != nil {
				fail("%v", err)
				return
			}
			// Acknowledge first: the controller waits for this, not for
			// this node's readers.
			if state(kindAck) != nil {
				return
			}
			if err := f.commit(commit); err != nil {
				return
			}
		case kindSnapshot:
			size := fr.i64()
			if fr.err != nil {
				return
			}
			whole, err := snap.add(size, fr.rest())
			if err != nil {
				fail("%v", err)
				return
			}
			if whole == nil {
				continue // more parts follow
			}
			if err := f.log.InstallSnapshot(whole); err != nil {
				fail("cannot install the snapshot: %v", err)
				return
			}
			if state(kindState) != nil {
				return
			}
		case kindCommit:
			commit := fr.i64()
			if fr.done() != nil || f.commit(commit) != nil {
				return
			}
		default:
			return
		}
	}
}

// appendBatches appends the whole batches of a frame, each continuing the
// one before it (prev is the epoch of the controller's batch before the
// first), and waits once until all of them are durable.
func (f *Follower) appendBatches(b []byte, prev int32) error {
	var last *segment.Appended
	for len(b) > 0 {
		h, batch, err := segment.NextBatch(b)
		if err != nil {
			return fmt.Errorf("shipped batches: %w", err)
		}
		if last, err = f.log.AppendShipped(batch, prev); err != nil {
			return err
		}
		prev, b = h.PartitionLeaderEpoch, b[len(batch):]
	}
	if last == nil {
		return errors.New("shipped batches: an empty frame")
	}
	return f.log.WaitShipped(last) // one sync covers the batches before it too
}

// commit applies the controller's commit point, up to what is durable here.
func (f *Follower) commit(offset int64) error {
	end, _ := f.log.End()
	if err := f.log.Commit(min(offset, end)); err != nil {
		f.lg.Error("metadata shipping: cannot apply committed events", "offset", offset, "error", err)
		return err
	}
	return nil
}
