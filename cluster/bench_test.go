package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
)

// BenchmarkClusterCreateTopic: three in-process nodes on loopback, each
// syncing its logs to this disk; one topic created at a time through the
// controller, on the fast path with quorum acks, with leader acks, and on
// the Raft fallback path; and the baseline in the same run, a single
// node's metadata log on the same disk (mode=single-node: what a node
// that is its own controller does). Reports topics/s and latency.
func BenchmarkClusterCreateTopic(b *testing.B) {
	b.Run("mode=single-node", benchSingleNodeCreate)
	for _, mode := range []string{"fast-quorum", "fast-leader", "raft-fallback"} {
		b.Run("mode="+mode, func(b *testing.B) {
			all := startThree(b, mode == "raft-fallback")
			defer func() {
				for _, m := range all {
					m.stop()
				}
			}()
			var ctrl *member
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				done := true
				for _, m := range all {
					m.meta.View(func(s *eventlog.State) { done = done && len(s.Brokers) == 3 })
				}
				if ctrl = controllerOf(all); ctrl != nil && done {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("no controller")
				}
			}
			timeCreates(b, func(i int) error {
				evs := topicEvents(fmt.Sprint("t", i), ctrl.id)
				var err error
				if mode == "fast-leader" {
					_, err = ctrl.node.AppendLeaderAcked(evs...)
				} else {
					_, err = ctrl.node.Append(10*time.Second, evs...)
				}
				return err
			})
		})
	}
}

// benchSingleNodeCreate appends the events of one topic at a time to a
// single node's metadata log, each durable before the next.
func benchSingleNodeCreate(b *testing.B) {
	st, err := segment.OpenStore(b.TempDir(), segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10 // as the cluster members'
	meta, err := eventlog.Open(st, eventlog.Options{Segment: &cfg, SnapshotBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer meta.Close()
	if _, err := meta.Append(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()}); err != nil {
		b.Fatal(err)
	}
	timeCreates(b, func(i int) error {
		_, err := meta.Append(topicEvents(fmt.Sprint("t", i), 1)...)
		return err
	})
}

// timeCreates runs create(i) for i up to b.N, one after another, and
// reports topics/s and the latency of each.
func timeCreates(b *testing.B, create func(i int) error) {
	lat := latency.New(b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		t0 := time.Now()
		if err := create(i); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(t0))
	}
	latency.Report(b, "topics", int64(b.N), time.Since(start), lat)
}
