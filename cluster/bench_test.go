package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/bench"
	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
)

// BenchmarkClusterCreateTopic: three in-process nodes on loopback, each
// syncing its logs to this disk; one topic created at a time through the
// controller, on the fast path with quorum acks, with leader acks, and on
// the Raft fallback path; and the baselines in the same run, a single
// node's metadata log on the same disk (mode=single-node: what a node
// that is its own controller does) and the disk syncing three files at
// once (mode=disk-3-files: a 512 B write to each, then their fdatasyncs
// in parallel, one round at a time; what three nodes sharing one disk ask
// of it for each change). Reports topics/s (rounds/s) and latency.
func BenchmarkClusterCreateTopic(b *testing.B) {
	b.Run("mode=single-node", benchSingleNodeCreate)
	b.Run("mode=disk-3-files", func(b *testing.B) { benchDiskRounds(b, 3) })
	for _, mode := range []string{"fast-quorum", "fast-leader", "raft-fallback"} {
		b.Run("mode="+mode, func(b *testing.B) {
			_, ctrl := benchCluster(b, mode == "raft-fallback")
			latency.Sequential(b, "topics", b.N, func(i int) error {
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

// BenchmarkClusterCreateConcurrent: as BenchmarkClusterCreateTopic with
// quorum acks, 32 writers creating topics at once through the controller
// (many clients, or a burst of auto-created topics): how far each path
// shares syncs between concurrent changes.
func BenchmarkClusterCreateConcurrent(b *testing.B) {
	for _, mode := range []string{"fast-quorum", "raft-fallback"} {
		b.Run("mode="+mode, func(b *testing.B) {
			_, ctrl := benchCluster(b, mode == "raft-fallback")
			latency.Concurrent(b, "topics", b.N, 32, func(i int) error {
				_, err := ctrl.node.Append(10*time.Second, topicEvents(fmt.Sprint("t", i), ctrl.id)...)
				return err
			})
		})
	}
}

// BenchmarkClusterCreateVisible: as BenchmarkClusterCreateTopic with quorum
// acks, each create followed by the wait until every node has applied it
// (polled every 20 µs): how soon after its answer a change is on the
// followers, for creates back to back (pace=0) and for creates 10 ms apart
// (topics/s counts the creates' time, not the pauses).
func BenchmarkClusterCreateVisible(b *testing.B) {
	for _, mode := range []string{"fast-quorum", "raft-fallback"} {
		for _, pace := range []time.Duration{0, 10 * time.Millisecond} {
			b.Run(fmt.Sprintf("mode=%s/pace=%v", mode, pace), func(b *testing.B) {
				all, ctrl := benchCluster(b, mode == "raft-fallback")
				samples := latency.New(b.N)
				var busy time.Duration // the creates' time, without the pauses
				b.ResetTimer()
				for i := range b.N {
					time.Sleep(pace)
					start := time.Now()
					if err := createVisible(all, ctrl, fmt.Sprint("t", i)); err != nil {
						b.Fatal(err)
					}
					d := time.Since(start)
					samples.Add(d)
					busy += d
				}
				latency.Report(b, "topics", int64(b.N), busy, samples)
			})
		}
	}
}

// createVisible creates a topic through the controller and waits until
// every node has it.
func createVisible(all []*member, ctrl *member, name string) error {
	if _, err := ctrl.node.Append(10*time.Second, topicEvents(name, ctrl.id)...); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Microsecond) {
		seen := 0
		for _, m := range all {
			m.meta.View(func(s *eventlog.State) {
				if s.Topics[name] != nil {
					seen++
				}
			})
		}
		if seen == len(all) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s is on %d of %d nodes after 10 s", name, seen, len(all))
		}
	}
}

// benchCluster starts three in-process nodes, stopped when b ends, and
// returns them and the controller once every node knows all three.
func benchCluster(b *testing.B, fallback bool) ([]*member, *member) {
	all := startThree(b, fallback)
	b.Cleanup(func() {
		for _, m := range all {
			m.stop()
		}
	})
	return all, benchController(b, all)
}

// benchController waits until every node knows all three and one is the
// controller, and returns it.
func benchController(b *testing.B, all []*member) *member {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		done := true
		for _, m := range all {
			m.meta.View(func(s *eventlog.State) { done = done && len(s.Brokers) == 3 })
		}
		if ctrl := controllerOf(all); ctrl != nil && done {
			return ctrl
		}
		if time.Now().After(deadline) {
			b.Fatal("no controller")
		}
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
	latency.Sequential(b, "topics", b.N, func(i int) error {
		_, err := meta.Append(topicEvents(fmt.Sprint("t", i), 1)...)
		return err
	})
}

// benchDiskRounds times b.N rounds of a 512 B write to each of files zeroed
// files and their fdatasyncs in parallel.
func benchDiskRounds(b *testing.B, files int) {
	r, err := bench.DiskWrite(b.TempDir(), b.N*512*files, 512, files, true)
	if err != nil {
		b.Fatal(err)
	}
	latency.Report(b, "rounds", r.Ops, r.Elapsed, r.Samples())
}

// BenchmarkFollowerCatchUp: one follower is down while b.N topics are
// created through the controller, one at a time (not timed); then it
// starts again, and the time until it has applied them all is reported,
// with the rate at which it took them.
func BenchmarkFollowerCatchUp(b *testing.B) {
	dir := b.TempDir()
	all := startThreeWith(b, memberOpts{}, dir)
	defer func() { stopAll(all) }()
	ctrl := benchController(b, all)
	var down *member
	for i, m := range all {
		if m != ctrl {
			down, all[i] = m, nil
			break
		}
	}
	down.stop()
	for i := range b.N {
		if _, err := ctrl.node.Append(10*time.Second, topicEvents(fmt.Sprint("t", i), ctrl.id)...); err != nil {
			b.Fatal(err)
		}
	}
	want := ctrl.meta.Committed()
	b.ResetTimer()
	start := time.Now()
	back := startMemberWith(b, memberOpts{}, down.id, down.dir, ctrl.node.GossipAddr())
	for i := range all {
		if all[i] == nil {
			all[i] = back
		}
	}
	for deadline := time.Now().Add(5 * time.Minute); back.meta.Committed() < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the returning follower applied up to %d of %d", back.meta.Committed(), want)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(elapsed.Seconds()*1000, "catch-up-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "topics/s")
	b.ReportMetric(0, "ns/op")
}
