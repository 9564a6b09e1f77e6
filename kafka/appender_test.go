package kafka

import (
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// memLog is a partition log on an in-memory file system.
func memLog(t *testing.T) *segment.Log {
	t.Helper()
	store := memStore(t, segmenttest.NewMemFS())
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10 // small: MemFS copies what it allocates
	l, err := store.Open("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAppenderKeepsEachSubmittersOrder: idempotent producers submit their
// batches concurrently without waiting between them, as pipelined
// connections do. Each producer's sequence only passes if its batches
// reach the log in the order it submitted them; every batch must be
// appended exactly once, at an offset no other batch has.
func TestAppenderKeepsEachSubmittersOrder(t *testing.T) {
	l := memLog(t)
	part := &partition{log: l, producers: newProducers(), topic: "t"}

	const producers, perProducer = 16, 100 // 1,600 writes in flight at most: under the queue depth
	reqs := make([][]*appendReq, producers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for seq := range perProducer {
				b := segmenttest.Batch{Idempotent: true, ProducerID: int64(p), BaseSequence: int32(seq),
					Records: []segmenttest.Record{{Value: []byte("v")}}}.Build()
				r := &appendReq{records: b, acks: -1}
				part.appender.submit(part, r)
				reqs[p] = append(reqs[p], r)
			}
		})
	}
	wg.Wait()

	seen := map[int64]bool{}
	for p, rs := range reqs {
		last := int64(-1)
		for seq, r := range rs {
			<-r.done
			if r.code != 0 || r.a == nil {
				t.Fatalf("producer %d sequence %d: code %d, appended %v", p, seq, r.code, r.a != nil)
			}
			if err := r.a.Wait(); err != nil {
				t.Fatal(err)
			}
			if r.a.Base <= last || seen[r.a.Base] {
				t.Fatalf("producer %d sequence %d at offset %d (its previous at %d, taken before: %v)", p, seq, r.a.Base, last, seen[r.a.Base])
			}
			last = r.a.Base
			seen[r.a.Base] = true
		}
	}
	if got := l.HighWatermark(); got != producers*perProducer {
		t.Fatalf("log ends at %d, want %d", got, producers*perProducer)
	}
}

// TestAppenderHandsOnTheQueue: a goroutine that has appended its share
// for others hands the rest to a goroutine of its own, which appends it
// all and leaves the appender idle.
func TestAppenderHandsOnTheQueue(t *testing.T) {
	l := memLog(t)
	part := &partition{log: l, topic: "t"}
	ap := &part.appender
	var reqs []*appendReq
	for range 3 {
		r := &appendReq{records: segmenttest.Values(1, "v"), acks: -1, done: make(chan struct{})}
		reqs = append(reqs, r)
	}
	ap.queue, ap.busy = append([]*appendReq(nil), reqs...), true
	ap.drain(part, 0) // its share is used up: everything goes to another goroutine
	for i, r := range reqs {
		select {
		case <-r.done:
		case <-time.After(30 * time.Second): // a hang, not a slow machine
			t.Fatalf("batch %d was never appended", i)
		}
		if r.code != 0 || r.a == nil || r.a.Base != int64(i) {
			t.Fatalf("batch %d: code %d, appended %v", i, r.code, r.a)
		}
	}
	// Idle again, once the other goroutine is done: the next submit
	// appends before it returns.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		ap.mu.Lock()
		busy := ap.busy
		ap.mu.Unlock()
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the appender stayed busy with an empty queue")
		}
	}
	r := &appendReq{records: segmenttest.Values(1, "w"), acks: -1}
	part.appender.submit(part, r)
	select {
	case <-r.done:
	default:
		t.Fatal("a submit to an idle appender did not append before returning")
	}
}
