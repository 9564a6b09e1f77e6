package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/latency"
)

// BenchmarkClusterCreateTopic: three in-process nodes on loopback, each
// syncing its logs to this disk; one topic created at a time through the
// controller, on the fast path with quorum acks, with leader acks, and on
// the Raft fallback path. Reports topics/s and latency.
func BenchmarkClusterCreateTopic(b *testing.B) {
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
			lat := latency.New(b.N)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				t0 := time.Now()
				evs := topicEvents(fmt.Sprint("t", i), ctrl.id)
				var err error
				if mode == "fast-leader" {
					_, err = ctrl.node.AppendLeaderAcked(evs...)
				} else {
					_, err = ctrl.node.Append(10*time.Second, evs...)
				}
				if err != nil {
					b.Fatal(err)
				}
				lat.Add(time.Since(t0))
			}
			elapsed := time.Since(start)
			latency.Report(b, "topics", int64(b.N), elapsed, lat)
		})
	}
}
