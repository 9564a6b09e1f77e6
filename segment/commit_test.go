package segment

import (
	"sync"
	"testing"
	"time"
)

// idleCommitter gives a store a committer whose goroutine runs only once
// start is called (at the end of the test if not before).
func idleCommitter(t *testing.T) (*Store, *committer, func()) {
	t.Helper()
	st, err := OpenStore(t.TempDir(), StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	st.c.close()
	c := &committer{p: ProfileLow, wake: make(chan struct{}, 1), done: make(chan struct{}), slots: make(chan struct{}, maxRoundsInFlight)}
	st.c = c
	var once sync.Once
	start := func() { once.Do(func() { go c.run() }) }
	t.Cleanup(func() {
		start() // Close waits for it
		st.Close()
	})
	return st, c, start
}

// appendOne appends a batch of one record to l, acks=-1.
func appendOne(t *testing.T, l *Log) *Appended {
	t.Helper()
	a, err := l.Append(BuildBatch(AppendRecords(nil, []Record{{Value: []byte("v")}}), 1, CodecNone, 1), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestWaiterSyncsALoneWrite: with no sync round in flight and its write
// alone in the queue, Wait syncs the write itself (here the committer's
// goroutine does not run at all); under load (the last round had several
// writes) it leaves the round to the committer, which gathers.
func TestWaiterSyncsALoneWrite(t *testing.T) {
	st, c, start := idleCommitter(t)
	cfg := DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	l, err := st.Open("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waited := func(a *Appended) <-chan error {
		errc := make(chan error, 1)
		go func() { errc <- a.Wait() }()
		return errc
	}

	select {
	case err := <-waited(appendOne(t, l)):
		if err != nil || l.HighWatermark() != 1 {
			t.Fatalf("lone write: %v, high watermark %d", err, l.HighWatermark())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lone write's Wait did not sync it")
	}

	c.statsMu.Lock()
	c.lastRound = 5 // under load
	c.statsMu.Unlock()
	errc := waited(appendOne(t, l))
	select {
	case err := <-errc:
		t.Fatalf("Wait synced a round itself under load (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	start()
	if err := <-errc; err != nil || l.HighWatermark() != 2 {
		t.Fatalf("the committer's round: %v, high watermark %d", err, l.HighWatermark())
	}
}

// TestWritersWaitLeavesTheCommitterAsleep: on a log whose writers wait
// (Config.WritersWait), a lone write is left for its wait to sync and does
// not wake the committer; a write that is not alone, or made under load,
// wakes it as on any log, and so does a wait that does not sync its
// unannounced write itself. No write is left unsynced.
func TestWritersWaitLeavesTheCommitterAsleep(t *testing.T) {
	// Until the committer's goroutine starts, its wake channel keeps the
	// token a poke leaves.
	st, c, start := idleCommitter(t)
	cfg := DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	plain, err := st.Open("plain", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WritersWait = true
	waits, err := st.Open("waits", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	woken := func() bool {
		select {
		case <-c.wake:
			return true
		default:
			return false
		}
	}
	setLastRound := func(n int) {
		c.statsMu.Lock()
		c.lastRound = n
		c.statsMu.Unlock()
	}

	a := appendOne(t, plain)
	if !woken() {
		t.Fatal("a write to a log whose writers may not wait did not wake the committer")
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a := appendOne(t, waits)
		if woken() {
			t.Fatalf("write %d: a lone write whose writer waits woke the committer", i)
		}
		if err := a.Wait(); err != nil || waits.HighWatermark() != int64(i+1) {
			t.Fatalf("write %d: %v, high watermark %d", i, err, waits.HighWatermark())
		}
		if woken() {
			t.Fatalf("write %d: its wait woke the committer after syncing it", i)
		}
	}

	// Not waited for (a writer that failed between append and wait): the
	// next write is not alone and wakes the committer.
	first := appendOne(t, waits)
	if woken() {
		t.Fatal("a lone write whose writer waits woke the committer")
	}
	second := appendOne(t, waits)
	if !woken() {
		t.Fatal("a write queued behind another did not wake the committer")
	}
	c.wake <- struct{}{} // given back for the committer's start below

	// Under load when its wait comes, the wait wakes the committer.
	start()
	if err := second.Wait(); err != nil || first.Err() != nil || waits.HighWatermark() != 5 {
		t.Fatalf("queued writes: %v, %v, high watermark %d", err, first.Err(), waits.HighWatermark())
	}
	setLastRound(1)
	for len(c.slots) > 0 {
		time.Sleep(time.Millisecond)
	}
	third := appendOne(t, waits)
	setLastRound(5)
	errc := make(chan error, 1)
	go func() { errc <- third.Wait() }()
	select {
	case err := <-errc:
		if err != nil || waits.HighWatermark() != 6 {
			t.Fatalf("a write whose wait found load: %v, high watermark %d", err, waits.HighWatermark())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write whose wait found load was never synced: nothing woke the committer")
	}
}
