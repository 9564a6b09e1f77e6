package segment_test

import (
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// returnsWithin reports whether f returns within d (it keeps running if
// not; done is closed when it does).
func returnsWithin(d time.Duration, f func()) (ok bool, done chan struct{}) {
	done = make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
		return true, done
	case <-time.After(d):
		return false, done
	}
}

// TestSlowOpenHoldsUpOnlyItsOwnLog: while one log takes long to open,
// another opens at once; Remove and Close wait for the slow open, so that
// nothing it opens outlives them.
func TestSlowOpenHoldsUpOnlyItsOwnLog(t *testing.T) {
	cfg := smallConfig()
	for _, then := range []string{"remove", "close"} {
		t.Run(then, func(t *testing.T) {
			fsys := segmenttest.NewStallingFS("/slow-0")
			st, err := segment.OpenStore("/data", segment.StoreOptions{FS: fsys, RetentionCheckInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			defer fsys.Free() // first: Close waits for the held open
			slow := make(chan *segment.Log, 1)
			go func() {
				l, err := st.Open("slow", 0, cfg)
				if err != nil {
					t.Error(err)
				}
				slow <- l
			}()
			<-fsys.Stalled()
			if ok, _ := returnsWithin(5*time.Second, func() {
				if _, err := st.Open("fast", 0, cfg); err != nil {
					t.Error(err)
				}
			}); !ok {
				t.Fatal("opening one log waited for another log's open")
			}

			var finish func() error
			if then == "remove" {
				finish = func() error { return st.Remove("slow", 0) }
			} else {
				finish = st.Close
			}
			var ferr error
			ok, done := returnsWithin(100*time.Millisecond, func() { ferr = finish() })
			if ok {
				t.Fatalf("%s returned while the log was still being opened", then)
			}
			fsys.Free()
			l1 := <-slow
			<-done
			if ferr != nil {
				t.Fatal(ferr)
			}
			if l1 == nil {
				t.Fatal("the slow open failed")
			}
			// What the open made was closed by Remove or Close.
			if _, err := l1.Append(segmenttest.Values(1, "v"), 0, 1); err == nil {
				t.Fatalf("the log opened during %s still takes appends", then)
			}
			if then == "remove" {
				if names, _ := fsys.ReadDir("/data/slow-0"); len(names) > 0 {
					t.Fatalf("removed partition still has %v", names)
				}
			}
		})
	}
}
