package segment_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestSyncsDecideAfterEarlierFailures: more syncs of one log overlap than
// the committer starts (three goroutines sync beside its rounds) while
// writers append and a few fsyncs fail, losing what they did not make
// durable. Every acknowledged batch must survive a crash at its offset.
func TestSyncsDecideAfterEarlierFailures(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := range 150 {
		e := newEnv(t, smallConfig())
		e.fs.FailedSyncsLoseWrites()
		stop := make(chan struct{})
		var syncers sync.WaitGroup
		for range 3 {
			syncers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						e.log.SyncForTest()
					}
				}
			})
		}
		fs, failures := e.fs, 1+rng.IntN(3)
		fail := time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, func() { fs.FailSyncs(failures) })
		type write struct {
			batch []byte
			a     *segment.Appended
		}
		var mu sync.Mutex
		var writes []write
		var writers sync.WaitGroup
		for w := range 3 {
			writers.Go(func() {
				for i := range 100 {
					b := segmenttest.Values(1, fmt.Sprintf("w%d-%d", w, i))
					a, err := e.log.Append(b, 7, -1)
					if err != nil {
						return
					}
					mu.Lock()
					writes = append(writes, write{b, a})
					mu.Unlock()
				}
			})
		}
		writers.Wait()
		var acked []write
		for _, w := range writes {
			if w.a.Wait() == nil {
				acked = append(acked, w)
			}
		}
		close(stop)
		syncers.Wait()
		fail.Stop()
		e.store.Close()
		e.fs = e.fs.Crash(nil)
		e.open()
		for _, w := range acked {
			got, err := e.log.Read(w.a.Base, 1, nil)
			if err != nil {
				t.Fatalf("trial %d: acknowledged batch at %d: %v", trial, w.a.Base, err)
			}
			if !bytes.HasPrefix(got, stored(w.batch, w.a.Base, 7)) {
				t.Fatalf("trial %d: acknowledged batch at %d lost in a crash", trial, w.a.Base)
			}
		}
		e.store.Close()
	}
}
