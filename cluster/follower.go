package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// Follower takes the metadata log a controller ships: serve it the
// connections of stream StreamMetadata.
type Follower struct {
	log *eventlog.Log
	lg  *slog.Logger

	mu sync.Mutex
	// maxEpoch is the highest controller epoch seen, or Raft term this
	// node reached (fence): a controller of a lower one was deposed,
	// whether or not this node has heard from the new one (it may have
	// voted for it), and nothing of it is taken, as Raft takes nothing
	// from a leader of an older term.
	maxEpoch int32
	current  net.Conn // the controller's connection being served
	// heard is the highest commit point a controller sent, beyond what
	// this node's log may reach yet.
	heard atomic.Int64
	cut   func(id int32) bool
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

// fence is called when this node's Raft term rises to epoch (before it
// votes in it) and when it becomes the controller of epoch: a controller
// of an older one is refused from now on, and its session, if one runs,
// ends. Serve checks the epoch, under mu, before each change it makes to
// the log: a batch is taken either before the fence (and the vote that
// follows counts it) or not at all.
func (f *Follower) fence(epoch int32) {
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
	epoch, from, cluster := fr.i32(), fr.i32(), string(fr.rest())
	if fr.done() != nil {
		return
	}
	if own := heldClusterID(f.log); own != "" && own != cluster {
		// Nodes of two clusters never take each other's metadata: their
		// epochs and offsets can match by chance. A controller of no
		// cluster yet holds none of this node's metadata (its log would
		// say which cluster it is of): nodes with empty logs elected it,
		// and this node's log is not its cluster's.
		running := "no cluster yet (its metadata log holds none)"
		if cluster != "" {
			running = "cluster " + cluster
		}
		fail("controller %d runs %s, and this node's metadata is cluster %s's: a node joins another cluster only with an empty data directory", from, running, own)
		return
	}
	f.mu.Lock()
	if f.cut != nil && f.cut(from) {
		f.mu.Unlock()
		return
	}
	if epoch < f.maxEpoch {
		f.mu.Unlock()
		fail("controller %d's epoch %d is older than epoch %d, which this node has seen or voted in", from, epoch, f.maxEpoch)
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
			if err := f.whileCurrent(epoch, func() error { return f.log.TruncateTo(cut) }); err != nil {
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
			var last *segment.Appended
			err := f.whileCurrent(epoch, func() (err error) {
				last, err = f.appendBatches(batches, prev)
				return err
			})
			if err == nil {
				err = f.log.WaitShipped(last) // one sync covers the batches before it too
			}
			if err != nil {
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
			// Decoded before the fence's lock is taken: Raft's fence waits
			// for that lock before this node votes.
			decoded, err := eventlog.DecodeShippedSnapshot(whole)
			if err == nil {
				err = f.whileCurrent(epoch, func() error { return f.log.InstallDecoded(decoded) })
			}
			if err != nil {
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

// whileCurrent runs fn, which changes the log, unless the controller of
// epoch has been superseded (fence), with mu held so that no fence comes
// between the check and the change.
func (f *Follower) whileCurrent(epoch int32, fn func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch < f.maxEpoch {
		return fmt.Errorf("controller epoch %d was superseded: this node has since seen or voted in epoch %d", epoch, f.maxEpoch)
	}
	return fn()
}

// appendBatches appends the whole batches of a frame, each continuing the
// one before it (prev is the epoch of the controller's batch before the
// first), and returns the last, whose durability covers them all.
func (f *Follower) appendBatches(b []byte, prev int32) (*segment.Appended, error) {
	var last *segment.Appended
	for len(b) > 0 {
		h, batch, err := segment.NextBatch(b)
		if err != nil {
			return nil, fmt.Errorf("shipped batches: %w", err)
		}
		if last, err = f.log.AppendShipped(batch, prev); err != nil {
			return nil, err
		}
		prev, b = h.PartitionLeaderEpoch, b[len(batch):]
	}
	if last == nil {
		return nil, errors.New("shipped batches: an empty frame")
	}
	return last, nil
}

// commit applies the controller's commit point, up to what is durable here.
func (f *Follower) commit(offset int64) error {
	for {
		h := f.heard.Load()
		if offset <= h || f.heard.CompareAndSwap(h, offset) {
			break
		}
	}
	end, _ := f.log.End()
	if err := f.log.Commit(min(offset, end)); err != nil {
		f.lg.Error("metadata shipping: cannot apply committed events", "offset", offset, "error", err)
		return err
	}
	return nil
}
