package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// Controller ships the metadata log to the followers and commits what a
// majority of the voters holds. Create one per term won; Stop it when the
// term ends.
type Controller struct {
	log    *eventlog.Log
	id     int32
	epoch  int32
	voters []int32          // every voter, this node included: the quorum
	peers  map[int32]string // follower id → replication address
	lg     *slog.Logger

	mu     sync.Mutex
	match  map[int32]FollowerState // what each follower acknowledged, and when
	conns  map[int32]net.Conn
	commit int64
	waitc  chan struct{} // closed and replaced when commit advances

	// cut, a fault hook for tests: peers this controller cannot reach.
	cut func(id int32) bool
	// heartbeat is how often an idle follower hears the commit point
	// (Heartbeat; tests change it).
	heartbeat time.Duration
	// linger and idleGap: commitLinger and idleGap (tests change them).
	linger, idleGap time.Duration
	// snapshotPart is the most of a snapshot one frame carries
	// (snapshotPart; tests make it smaller).
	snapshotPart int

	quit  chan struct{}
	ended chan struct{} // closed when Stop has stopped every goroutine
	wg    sync.WaitGroup
}

// Heartbeat is how often an idle follower hears the commit point when it
// does not move (it is sent whenever it does).
const Heartbeat = 50 * time.Millisecond

// commitLinger is how long a new commit point waits for a batch to ride
// with before it is sent alone, while changes stream.
const commitLinger = time.Millisecond

// idleGap: a batch shipped this long after the one before it came alone,
// and its commit point is sent at once instead of lingering. Shorter
// gaps (changes at more than 250 a second) keep the linger, which spares
// each change a frame of its own: sent at once, those frames cost
// sequential creates up to a fifth of their rate.
const idleGap = 4 * time.Millisecond

// NewController starts shipping log, whose batches this controller stamps
// with epoch, to peers (more can be added). A majority of voters (every
// voter, this node included) commits; peers that are not voters get the
// log but do not count.
func NewController(log *eventlog.Log, id, epoch int32, voters []int32, peers map[int32]string, lg *slog.Logger) *Controller {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &Controller{log: log, id: id, epoch: epoch, voters: slices.Clone(voters), peers: map[int32]string{}, lg: lg, match: map[int32]FollowerState{}, conns: map[int32]net.Conn{},
		commit: log.Committed(), waitc: make(chan struct{}), heartbeat: Heartbeat, linger: commitLinger, idleGap: idleGap, snapshotPart: snapshotPart, quit: make(chan struct{}), ended: make(chan struct{})}
	for pid, addr := range peers {
		c.AddPeer(pid, addr)
	}
	c.wg.Go(c.commitOwn)
	return c
}

// AddPeer starts shipping to a follower found after the start, or points
// a known one's next session at its new address (it restarted elsewhere).
func (c *Controller) AddPeer(id int32, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == c.id || c.stopped() {
		return
	}
	old, known := c.peers[id]
	c.peers[id] = addr
	if !known {
		c.wg.Go(func() { c.ship(id) })
	} else if old != addr {
		if conn := c.conns[id]; conn != nil {
			conn.Close() // the next session dials the new address
		}
	}
}

// setHeartbeat changes how often idle followers hear the commit point
// (a test hook).
func (c *Controller) setHeartbeat(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heartbeat = d
}

// setLinger changes commitLinger and idleGap (a test hook).
func (c *Controller) setLinger(linger, idleGap time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.linger, c.idleGap = linger, idleGap
}

// setCut installs the fault hook: sessions with cut peers end (their
// connections are closed) and are not opened again.
func (c *Controller) setCut(cut func(id int32) bool) {
	c.mu.Lock()
	c.cut = cut
	for id, conn := range c.conns {
		if cut != nil && cut(id) {
			conn.Close()
		}
	}
	c.mu.Unlock()
}

// Stop ends the shipping and waits for it.
func (c *Controller) Stop() {
	close(c.quit)
	c.wg.Wait()
	close(c.ended)
}

// CaughtUp reports whether a follower holds everything committed: a
// returning broker is unfenced only then (it has replayed past its own
// registration and serves current metadata).
func (c *Controller) CaughtUp(id int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return id == c.id || c.match[id].End >= c.commit
}

// mostCaughtUp is the voter other than this node that has acknowledged
// the most of the log, if one holds everything committed.
func (c *Controller) mostCaughtUp() (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, end := int32(0), int64(-1)
	for _, id := range c.voters {
		if f := c.match[id]; id != c.id && f.End >= c.commit && f.End > end {
			best, end = id, f.End
		}
	}
	return best, end >= 0
}

// Committed is the commit point.
func (c *Controller) Committed() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commit
}

// WaitCommitted waits until offset is committed (the answer to a client
// with quorum acks), or timeout.
func (c *Controller) WaitCommitted(offset int64, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		done, wait := c.commit >= offset, c.waitc
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wait:
		case <-deadline:
			return fmt.Errorf("%w (offset %d, %v): %w", ErrNotCommitted, offset, timeout, context.DeadlineExceeded)
		case <-c.quit:
			// A commit found as the term ended is announced once the
			// shippers stop (advance applies it first): the change is
			// then committed, and answered so.
			select {
			case <-c.ended:
			case <-deadline:
			}
			c.mu.Lock()
			done = c.commit >= offset
			c.mu.Unlock()
			if done {
				return nil
			}
			// The change may yet commit in a later term (a client that
			// retries may then find it made): Kafka answers NOT_CONTROLLER.
			return fmt.Errorf("%w: its term ended before offset %d was committed", ErrNotController, offset)
		}
	}
}

// commitOwn advances the commit point as this node's own log becomes
// durable (a single voter commits alone).
func (c *Controller) commitOwn() {
	for {
		wait := c.log.Segment().Wait()
		c.advance()
		select {
		case <-wait:
		case <-c.quit:
			return
		}
	}
}

// advance recomputes the commit point: the highest log end a majority of
// the voters holds, if the batch before it is of this controller's epoch.
func (c *Controller) advance() {
	own := c.log.Segment().HighWatermark()
	c.mu.Lock()
	var ends []int64
	for _, id := range c.voters {
		if id == c.id {
			ends = append(ends, own)
		} else {
			ends = append(ends, c.match[id].End) // 0 until it acknowledges
		}
	}
	slices.Sort(ends)
	quorum := len(ends)/2 + 1
	// Batches are shipped while this node syncs them, so followers may
	// hold more than this node does; the commit point waits for this
	// node's own copy too (the client's answer waits for it anyway, and
	// the readers' state here can take only what is durable here).
	candidate := min(ends[len(ends)-quorum], own)
	if candidate <= c.commit || c.log.EpochBefore(candidate) != c.epoch {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	// Apply before announcing: a client answered once its change is
	// committed then finds it in this node's metadata.
	if err := c.log.Commit(candidate); err != nil {
		c.lg.Error("cannot apply committed metadata", "offset", candidate, "error", err)
	}
	c.mu.Lock()
	if candidate > c.commit {
		c.commit = candidate
		close(c.waitc)
		c.waitc = make(chan struct{})
	}
	c.mu.Unlock()
}

func (c *Controller) stopped() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// ship keeps one follower up to date, reconnecting as needed: after
// 100 ms, or, while the follower refuses this controller (a node of
// another cluster, say), after twice as long each time, up to 5 s.
func (c *Controller) ship(id int32) {
	wait := retryShipping
	var warned time.Time // when a refusal was last logged as a warning
	for !c.stopped() {
		c.mu.Lock()
		addr := c.peers[id]
		c.mu.Unlock()
		err := c.session(id, addr)
		if c.stopped() {
			return
		}
		c.lg.Debug("metadata shipping: session ended", "follower", id, "error", err)
		if errors.Is(err, errFollowerRefused) {
			// A follower that keeps refusing (its disk is full, it holds
			// another cluster's log) is said on this side too, once a minute.
			if time.Since(warned) >= time.Minute {
				warned = time.Now()
				c.lg.Warn("metadata shipping: the follower refuses the metadata log; trying again", "follower", id, "error", err)
			}
			wait = min(2*wait, maxRetryShipping)
		} else {
			wait = retryShipping
		}
		select {
		case <-time.After(wait):
		case <-c.quit:
			return
		}
	}
}

// retryShipping and maxRetryShipping bound the wait before a follower's
// next session.
const (
	retryShipping    = 100 * time.Millisecond
	maxRetryShipping = 5 * time.Second
)

// errFollowerRefused: the follower refused this controller, saying why.
var errFollowerRefused = errors.New("follower refused")

func (c *Controller) session(id int32, addr string) error {
	c.mu.Lock()
	cut := c.cut != nil && c.cut(id)
	c.mu.Unlock()
	if cut {
		return errors.New("cut off by the fault hook")
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	c.mu.Lock()
	c.conns[id] = conn
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.conns, id)
		c.mu.Unlock()
	}()
	go func() { <-c.quit; conn.Close() }()
	r, w := bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 64<<10)
	if err := w.WriteByte(StreamMetadata); err != nil {
		return err
	}
	if err := writeFrame(w, kindHello, c.epoch, c.id, heldClusterID(c.log)); err != nil {
		return err
	}
	end, err := c.reconcile(r, w)
	if err != nil {
		return err
	}
	if end < c.log.Segment().StartOffset() {
		// The batches it needs are gone (covered by a snapshot): send the
		// snapshot, then what follows it.
		snap, off, err := c.log.LatestSnapshot()
		if err != nil {
			return err
		}
		c.lg.Info("metadata shipping: sending a snapshot", "follower", id, "follower_end", end, "snapshot_offset", off)
		for part := range slices.Chunk(snap, c.snapshotPart) {
			if err := writeFrame(w, kindSnapshot, int64(len(snap)), part); err != nil {
				return err
			}
		}
		if end, err = c.readState(r, kindState); err != nil {
			return err
		}
		if end < c.log.Segment().StartOffset() {
			return fmt.Errorf("follower %d still ends at %d after the snapshot, before this log's start %d", id, end, c.log.Segment().StartOffset())
		}
	}
	buf := make([]byte, 0, 1<<20)
	sent := int64(-1) // the commit point last sent to this follower
	// Each batch is shipped once written, while this node syncs it: a
	// commit then waits for the slower of the two syncs, not both in turn.
	// A frame carries everything written since the last (up to 1 MiB, or
	// one larger batch), which the follower syncs once: concurrent
	// changes, each its own batch when it came between this node's syncs,
	// share a round trip and a sync. Frames go out while earlier ones
	// await their acknowledgements (up to maxInflight), so the follower
	// finds the next one waiting once it has synced and acknowledged one;
	// a goroutine of its own reads the acknowledgements.
	next := end
	// Frames sent and not yet acknowledged. The reader wakes the shipper
	// (acks) only when an acknowledgement opens a full window: each wake
	// of a goroutine costs more here than the frame it would not send.
	var inflight atomic.Int32
	// When the last batch was shipped, and whether it came within
	// idleGap of the one before it (changes are streaming).
	var shipped time.Time
	streaming := false
	acks := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	defer func() {
		// Stop waits for the shippers; each waits for its reader, whose
		// advance may still be applying a commit.
		conn.Close()
		<-readerDone
	}()
	go func() {
		defer close(readerDone)
		for {
			e, err := c.readState(r, kindAck)
			if err != nil {
				readErr <- err
				conn.Close()
				return
			}
			end, now := c.log.Segment().EndOffset(), time.Now()
			c.mu.Lock()
			f := c.match[id]
			f.End, f.AckedAt = e, now
			if e >= end {
				f.CaughtUpAt = now
			}
			c.match[id] = f
			c.mu.Unlock()
			c.advance()
			if inflight.Add(-1) == maxInflight-1 {
				select {
				case acks <- struct{}{}:
				default:
				}
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		seg := c.log.Segment()
		wait := c.log.Written()
		c.mu.Lock()
		commit, committed, heartbeat, linger, idle := c.commit, c.waitc, c.heartbeat, c.linger, c.idleGap
		c.mu.Unlock()
		pending := next < seg.EndOffset()
		if pending && inflight.Load() < maxInflight {
			b, err := seg.ReadWritten(next, 1<<20, buf[:0])
			if err != nil {
				return err
			}
			batches, after, err := wholeBatches(b)
			if err != nil {
				return err
			}
			inflight.Add(1) // before its acknowledgement can come
			if err := writeFrame(w, kindBatch, c.log.EpochBefore(next), commit, batches); err != nil {
				return err
			}
			next, sent = after, commit
			now := time.Now()
			streaming, shipped = now.Sub(shipped) < idle, now
			continue
		}
		// A follower applies what is committed once it hears of it. While
		// changes stream, with the next batch if one follows within
		// commitLinger (back-to-back changes pay for no extra frames, and
		// the follower applies after acknowledging), else alone about a
		// millisecond later; a change that came alone, at once. Either
		// way a change answered on this node is soon on every node, and
		// served by the partition leaders it names, not at the next
		// heartbeat.
		if !pending && commit > sent && !streaming {
			if sent, err = c.sendCommit(w); err != nil {
				return err
			}
			continue
		}
		var more <-chan struct{} // nil (never) while the window is full
		if !pending {
			more = wait
		}
		after, send := heartbeat, true
		lingers := linger - time.Since(shipped) // of the last batch's
		switch {
		case !pending && commit > sent:
			after, committed = linger, nil // a point is waiting to go out
		case !pending && streaming && lingers > 0:
			// While changes stream, the next batch, or the end of this
			// linger, carries the last one's commit point: the shipper is
			// not woken by each commit (a wake per change and follower,
			// for no frame), only told it then if nothing else came.
			after, committed, send = lingers, nil, false
		}
		timer.Reset(after)
		select {
		case <-more:
		case <-acks:
		case err := <-readErr:
			return err
		case <-committed:
		case <-timer.C:
			if send || c.Committed() > sent {
				if sent, err = c.sendCommit(w); err != nil {
					return err
				}
			}
		case <-c.quit:
			return nil
		}
	}
}

// maxInflight bounds the frames sent to a follower and not yet
// acknowledged.
const maxInflight = 4

// sendCommit tells a follower the commit point and returns it.
func (c *Controller) sendCommit(w *bufio.Writer) (int64, error) {
	commit := c.Committed()
	return commit, writeFrame(w, kindCommit, commit)
}

// readState reads a follower's log end (and last epoch) or its refusal.
func (c *Controller) readState(r *bufio.Reader, want byte) (int64, error) {
	end, _, err := c.readStateEpoch(r, want)
	return end, err
}

// readStateEpoch reads a follower's log end and the epoch of its last
// batch, or its refusal.
func (c *Controller) readStateEpoch(r *bufio.Reader, want byte) (int64, int32, error) {
	fr, err := readFrame(r)
	if err != nil {
		return 0, 0, err
	}
	if fr.kind == kindError {
		return 0, 0, fmt.Errorf("%w: %s", errFollowerRefused, fr.rest())
	}
	if fr.kind != want {
		return 0, 0, fmt.Errorf("%w: kind %d, want %d", errBadFrame, fr.kind, want)
	}
	end, last := fr.i64(), fr.i32()
	return end, last, fr.done()
}

// reconcile reads the follower's state and makes it cut any tail this log
// does not have; it returns the follower's log end, from where shipping
// continues. Batches of one epoch come from the one controller of that
// epoch, so a follower whose last batch's epoch ends here at or after its
// end holds a prefix of this log.
func (c *Controller) reconcile(r *bufio.Reader, w *bufio.Writer) (int64, error) {
	end, last, err := c.readStateEpoch(r, kindState)
	for err == nil && end > 0 {
		e, eEnd, ok := c.log.EpochFor(last)
		if ok && e == last && eEnd >= end {
			break
		}
		if err = writeFrame(w, kindEpoch, e, eEnd); err != nil {
			break
		}
		end, last, err = c.readStateEpoch(r, kindState)
	}
	return end, err
}

// wholeBatches returns the whole batches at the start of b, at least one,
// and the offset after the last.
func wholeBatches(b []byte) ([]byte, int64, error) {
	n, after := 0, int64(0)
	for n < len(b) {
		h, batch, err := segment.NextBatch(b[n:])
		if err != nil {
			break
		}
		n += len(batch)
		after = h.LastOffset() + 1
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: no whole batch in %d bytes read", errBadFrame, len(b))
	}
	return b[:n], after, nil
}
