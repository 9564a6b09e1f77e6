package segment

import (
	"testing"
	"time"
)

// TestWaiterSyncsALoneWrite: with no sync round in flight and its write
// alone in the queue, Wait syncs the write itself (here the committer's
// goroutine does not run at all); under load (the last round had several
// writes) it leaves the round to the committer, which gathers.
func TestWaiterSyncsALoneWrite(t *testing.T) {
	st, err := OpenStore(t.TempDir(), StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	st.c.close()
	c := &committer{p: ProfileLow, wake: make(chan struct{}, 1), done: make(chan struct{}), slots: make(chan struct{}, maxRoundsInFlight)}
	st.c = c // its goroutine starts below
	started := false
	defer func() {
		if !started {
			go c.run() // Close waits for it
		}
		st.Close()
	}()
	cfg := DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	l, err := st.Open("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	appendOne := func() *Appended {
		t.Helper()
		a, err := l.Append(BuildBatch(AppendRecords(nil, []Record{{Value: []byte("v")}}), 1, CodecNone, 1), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	waited := func(a *Appended) <-chan error {
		errc := make(chan error, 1)
		go func() { errc <- a.Wait() }()
		return errc
	}

	select {
	case err := <-waited(appendOne()):
		if err != nil || l.HighWatermark() != 1 {
			t.Fatalf("lone write: %v, high watermark %d", err, l.HighWatermark())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lone write's Wait did not sync it")
	}

	c.statsMu.Lock()
	c.lastRound = 5 // under load
	c.statsMu.Unlock()
	errc := waited(appendOne())
	select {
	case err := <-errc:
		t.Fatalf("Wait synced a round itself under load (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	started = true
	go c.run()
	if err := <-errc; err != nil || l.HighWatermark() != 2 {
		t.Fatalf("the committer's round: %v, high watermark %d", err, l.HighWatermark())
	}
}
