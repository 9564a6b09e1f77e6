package latency

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	s := New(0)
	if s.Percentile(0.5) != 0 || s.Mean() != 0 {
		t.Fatal("empty samples must report 0")
	}
	for i := 100; i >= 1; i-- { // out of order on purpose
		s.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := s.Percentile(c.q); got != c.want {
			t.Errorf("p%v = %v, want %v", c.q*100, got, c.want)
		}
	}
	if got := s.Mean(); got != 50500*time.Microsecond {
		t.Errorf("mean %v", got)
	}
}

type metrics map[string]float64

func (m metrics) ReportMetric(n float64, unit string) { m[unit] = n }

func TestReport(t *testing.T) {
	s := New(3)
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond} {
		s.Add(d)
	}
	m := metrics{}
	Report(m, "topics", 3, 2*time.Second, s)
	want := metrics{"topics/s": 1.5, "p50-µs": 2000, "p99-µs": 3000, "ns/op": 0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, m[k], v, m)
		}
	}
}

type fakeBench struct {
	metrics
	fatal []any
}

func (f *fakeBench) ResetTimer()       {}
func (f *fakeBench) Fatal(args ...any) { f.fatal = args }

// TestConcurrent: every operation runs once, across the workers, and is
// timed (Sequential's one worker runs them in order); an error fails the
// benchmark.
func TestConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	b := &fakeBench{metrics: metrics{}}
	Concurrent(b, "ops", 100, 7, func(i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	})
	if len(seen) != 100 || b.fatal != nil || b.metrics["ops/s"] <= 0 {
		t.Fatalf("ran %d distinct ops (want 100), fatal %v, metrics %v", len(seen), b.fatal, b.metrics)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("op %d ran %d times", i, n)
		}
	}
	var order []int
	b = &fakeBench{metrics: metrics{}}
	Sequential(b, "ops", 100, func(i int) error { order = append(order, i); return nil })
	if len(order) != 100 || !slices.IsSorted(order) || b.fatal != nil {
		t.Fatalf("Sequential ran %d ops, in order %v, fatal %v", len(order), slices.IsSorted(order), b.fatal)
	}
	b = &fakeBench{metrics: metrics{}}
	Concurrent(b, "ops", 100, 7, func(i int) error {
		if i == 50 {
			return errors.New("op 50 failed")
		}
		return nil
	})
	if b.fatal == nil {
		t.Fatal("an operation's error did not fail the benchmark")
	}
}
