package raft

import (
	"slices"
	"testing"
)

// BenchmarkElectionAfterLeaderCrash measures, in ticks with the driver's
// default timeouts (election 15, heartbeat 3), how long three nodes take to elect
// a new leader once theirs crashes, over a network that delays messages up
// to one tick: b.N crashes, p50/p99/max reported.
func BenchmarkElectionAfterLeaderCrash(b *testing.B) {
	var ticks []float64
	for i := range b.N {
		s := newSim(&testing.T{}, uint64(i), 3, func(c *Config) { c.ElectionTicks, c.HeartbeatTicks = 15, 3 })
		s.maxDelay = 1
		for s.leader() == nil {
			s.step()
		}
		for range 20 {
			s.step()
		}
		old := s.leader()
		s.crash(old.id)
		start := s.now
		for {
			s.step()
			if l := s.leader(); l != nil && l.id != old.id {
				break
			}
		}
		ticks = append(ticks, float64(s.now-start))
	}
	slices.Sort(ticks)
	b.ReportMetric(ticks[len(ticks)/2], "p50-ticks")
	b.ReportMetric(ticks[len(ticks)*99/100], "p99-ticks")
	b.ReportMetric(ticks[len(ticks)-1], "max-ticks")
	b.ReportMetric(0, "ns/op")
}
