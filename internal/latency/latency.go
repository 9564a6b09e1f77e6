// Package latency keeps the latencies of timed operations for benchmarks
// and load generators, and reports them as percentiles.
package latency

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Samples are operation latencies; safe for concurrent use.
type Samples struct {
	mu sync.Mutex
	d  []time.Duration
}

// New returns Samples with room for n latencies.
func New(n int) *Samples { return &Samples{d: make([]time.Duration, 0, n)} }

// Add records one latency.
func (s *Samples) Add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// Len is the number of latencies recorded.
func (s *Samples) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

// Percentile is the latency below which a fraction q of the operations
// fall (nearest rank); 0 with none recorded.
func (s *Samples) Percentile(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return 0
	}
	slices.Sort(s.d)
	i := int(q*float64(len(s.d))+0.5) - 1
	return s.d[min(max(i, 0), len(s.d)-1)]
}

// Mean is the mean latency; 0 with none recorded.
func (s *Samples) Mean() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	return sum / time.Duration(len(s.d))
}

// Reporter is the part of testing.B that takes custom metrics.
type Reporter interface {
	ReportMetric(n float64, unit string)
}

// Report gives a benchmark its result as ops per second in unit/s and,
// when latencies were recorded, their p50 and p99 in microseconds; ns/op,
// which would mix the units, is dropped.
func Report(b Reporter, unit string, ops int64, elapsed time.Duration, s *Samples) {
	b.ReportMetric(float64(ops)/elapsed.Seconds(), unit+"/s")
	if s != nil && s.Len() > 0 {
		b.ReportMetric(float64(s.Percentile(0.5).Microseconds()), "p50-µs")
		b.ReportMetric(float64(s.Percentile(0.99).Microseconds()), "p99-µs")
	}
	b.ReportMetric(0, "ns/op")
}

// Benchmark is the part of testing.B that Sequential uses.
type Benchmark interface {
	Reporter
	ResetTimer()
	Fatal(args ...any)
}

// Sequential runs op(i) for i up to n, one after another, each timed, and
// reports ops/s in unit/s and the latencies: a benchmark's b.N operations
// when n is b.N. The first error fails the benchmark.
func Sequential(b Benchmark, unit string, n int, op func(i int) error) {
	Concurrent(b, unit, n, 1, op)
}

// Concurrent runs op(i) for i up to n on workers goroutines taking the
// operations in turn, each timed, and reports as Sequential does. The
// first error fails the benchmark, once every worker has stopped.
func Concurrent(b Benchmark, unit string, n, workers int, op func(i int) error) {
	s := New(n)
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				t0 := time.Now()
				if err := op(i); err != nil {
					errs[w] = err
					return
				}
				s.Add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	Report(b, unit, int64(n), elapsed, s)
}
