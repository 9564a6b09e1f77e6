package segment

import (
	"sync"
	"sync/atomic"
	"time"
)

// committer is the one group committer of a process. Appends queue here;
// its goroutine takes a round of them (bounded by the profile), syncs every
// log they touched (concurrently), and resolves them. A lone write is synced
// at once; writes that arrive while a sync is in flight share the next
// round, which may start before the first ends (maxRoundsInFlight). Under
// load a round may wait up to MaxWait (and never longer than the last sync
// took) to gather as many writes as the previous round had, so that
// closed-loop writers keep sharing syncs instead of splitting into
// alternating half-full rounds. A lone write with no round in flight is
// synced by its waiter instead (help): measured, that took 60-100 µs of
// goroutine wake-ups off a lone message's p50 and 150-250 µs off a
// sequential create's, with no change for 128 concurrent producers. For a
// log whose writers always wait (Config.WritersWait) such a write does not
// wake the committer either (enqueue): that wake readies its goroutine on
// another thread, a futex call on the writer's path, for nothing.
type committer struct {
	p Profile

	// waiting counts writes reserved and not yet resolved; <= p.QueueDepth.
	waiting atomic.Int64

	mu     sync.Mutex
	queue  []*Appended
	closed bool

	wake  chan struct{} // capacity 1: "the queue may have grown"
	done  chan struct{} // closed when the flusher has exited
	slots chan struct{} // one per sync round in flight (maxRoundsInFlight)

	// The last round finished, for gather.
	statsMu      sync.Mutex
	lastRound    int
	lastRoundEnd time.Time
	lastSyncTook time.Duration

	// Counters, read with atomic loads.
	syncs  atomic.Int64
	writes atomic.Int64
	// failedAppends and failedSyncs count the appends that could not
	// allocate or write, and the syncs that failed (their writes dropped).
	failedAppends, failedSyncs atomic.Int64
}

func newCommitter(p Profile) *committer {
	c := &committer{p: p, wake: make(chan struct{}, 1), done: make(chan struct{}), slots: make(chan struct{}, maxRoundsInFlight)}
	go c.run()
	return c
}

// reserve takes a queue slot for one write, or refuses with ErrQueueFull.
func (c *committer) reserve() error {
	if c.waiting.Add(1) > int64(c.p.QueueDepth) {
		c.waiting.Add(-1)
		return ErrQueueFull
	}
	return nil
}

func (c *committer) unreserve() { c.waiting.Add(-1) }

// enqueue hands a written batch to the flusher. Callers hold the log's mu,
// so a log's writes queue in offset order. waited says that the writer
// waits for the batch right away: a lone write that help will sync then
// does not wake the committer (help wakes it if it does not sync it).
func (c *committer) enqueue(a *Appended, waited bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.resolve(a, ErrClosed)
		return
	}
	a.unannounced = waited && len(c.queue) == 0 && c.helps()
	c.queue = append(c.queue, a)
	c.mu.Unlock()
	if !a.unannounced {
		c.poke()
	}
}

// poke wakes the committer's goroutine.
func (c *committer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) resolve(a *Appended, err error) {
	c.waiting.Add(-1)
	a.resolve(err)
}

// failPending resolves every queued write of l with err. Callers hold l.mu.
func (c *committer) failPending(l *Log, err error) {
	c.mu.Lock()
	keep := c.queue[:0]
	var failed []*Appended
	for _, a := range c.queue {
		if a.log == l {
			failed = append(failed, a)
		} else {
			keep = append(keep, a)
		}
	}
	clear(c.queue[len(keep):])
	c.queue = keep
	c.mu.Unlock()
	for _, a := range failed {
		c.resolve(a, err)
	}
}

func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// maxRoundsInFlight is how many sync rounds may overlap: while one
// round's fdatasync runs, the next can start, so that writes arriving
// meanwhile do not wait for it to finish first.
const maxRoundsInFlight = 2

func (c *committer) run() {
	defer close(c.done)
	slots := c.slots
	defer func() {
		for range maxRoundsInFlight {
			slots <- struct{}{} // wait for the rounds in flight
		}
	}()
	for {
		c.mu.Lock()
		for len(c.queue) == 0 {
			if c.closed {
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		c.mu.Unlock()
		c.gather()
		slots <- struct{}{}
		round := c.take()
		if len(round) == 0 {
			<-slots
			continue
		}
		go c.runRound(round)
	}
}

// runRound syncs a round taken with a slot, and frees the slot.
func (c *committer) runRound(round []*Appended) {
	start := time.Now()
	c.syncRound(round)
	end := time.Now()
	c.statsMu.Lock()
	c.lastRoundEnd, c.lastSyncTook, c.lastRound = end, end.Sub(start), len(round)
	c.statsMu.Unlock()
	<-c.slots
}

// help runs the next round on a waiter's goroutine, when the last round
// was a lone write and a round may start: the write is then synced without
// waking the committer's goroutine and a round's goroutine, and the waiter
// goes on from the sync without being woken in turn. Under load (rounds
// of several writes) the committer gathers rounds as before.
//
// The wait for a write enqueued without waking the committer (unannounced)
// either syncs it or wakes the committer.
func (c *committer) help(unannounced bool) {
	synced := false
	defer func() {
		if unannounced && !synced {
			c.poke()
		}
	}()
	if !c.helps() {
		return // under load, or a round is in flight: the committer gathers
	}
	select {
	case c.slots <- struct{}{}:
	default:
		return
	}
	var round []*Appended
	c.mu.Lock()
	if !c.closed && len(c.queue) == 1 {
		round = c.takeLocked()
	}
	c.mu.Unlock()
	if len(round) == 0 {
		<-c.slots // not alone, or the committer took it
		return
	}
	synced = true
	c.runRound(round)
}

// helps reports whether help would sync a lone write now: the last round
// was one write, and none is in flight.
func (c *committer) helps() bool {
	c.statsMu.Lock()
	last := c.lastRound
	c.statsMu.Unlock()
	return last <= 1 && len(c.slots) == 0
}

// gather waits, under load only, for the queue to reach the size of the
// previous round.
func (c *committer) gather() {
	c.statsMu.Lock()
	last, deadline := c.lastRound, c.lastRoundEnd.Add(min(c.p.MaxWait, c.lastSyncTook))
	c.statsMu.Unlock()
	if last <= 1 || c.p.MaxWait <= 0 {
		return
	}
	for c.queued() < last {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// take removes one round from the front of the queue.
func (c *committer) take() []*Appended {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeLocked()
}

func (c *committer) takeLocked() []*Appended {
	n, bytes := 0, int64(0)
	for n < len(c.queue) && n < c.p.MaxWrites {
		if n > 0 && bytes+int64(c.queue[n].size) > c.p.MaxBytes {
			break
		}
		bytes += int64(c.queue[n].size)
		n++
	}
	round := make([]*Appended, n)
	copy(round, c.queue)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return round
}

type syncResult struct {
	durable int64
	gen     uint64
	err     error
}

// maxParallelSyncs bounds the fdatasync calls one round has in flight.
const maxParallelSyncs = 16

func (c *committer) syncRound(round []*Appended) {
	logs := make(map[*Log]*syncResult)
	order := make([]*Log, 0, 4)
	for _, a := range round {
		if _, ok := logs[a.log]; !ok {
			logs[a.log] = &syncResult{}
			order = append(order, a.log)
		}
	}
	if len(order) == 1 {
		r := logs[order[0]]
		r.durable, r.gen, r.err = order[0].sync()
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, maxParallelSyncs)
		for _, l := range order {
			r := logs[l]
			sem <- struct{}{}
			wg.Go(func() {
				r.durable, r.gen, r.err = l.sync()
				<-sem
			})
		}
		wg.Wait()
	}
	c.syncs.Add(int64(len(order)))
	c.writes.Add(int64(len(round)))
	for _, a := range round {
		r := logs[a.log]
		switch {
		case a.end <= r.durable && a.gen == r.gen:
			c.resolve(a, nil)
		case r.err != nil:
			c.resolve(a, r.err)
		default:
			c.resolve(a, ErrSyncFailed)
		}
	}
	for _, l := range order {
		l.maybeCheckpoint()
	}
}

// close stops the flusher after it has resolved everything queued.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.poke()
	<-c.done
}
