// Package bench holds chronik's load generators: workloads that drive a
// Kafka broker with franz-go and measure it, and the brokers to run them
// against side by side (chronik in-process, franz-go's kfake in memory and
// in its BlackholeProduce mode) plus the disk's own durable write rate.
// `go test -bench ./bench/...` and `chronik bench` both use them.
package bench

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/latency"
)

// Result is what a workload measured.
type Result struct {
	Workload string
	Ops      int64 // records, topics or messages
	Bytes    int64 // record values written or read
	Elapsed  time.Duration

	lat *latency.Samples // one per operation, when the workload times them
}

// Progress counts operations as a workload runs, for a progress display.
type Progress struct {
	ops, bytes atomic.Int64
}

func (p *Progress) add(ops, bytes int64) {
	if p != nil {
		p.ops.Add(ops)
		p.bytes.Add(bytes)
	}
}

// Load returns the operations and bytes done so far.
func (p *Progress) Load() (ops, bytes int64) { return p.ops.Load(), p.bytes.Load() }

// observe records one operation's latency; the workload made r.lat.
func (r *Result) observe(d time.Duration) { r.lat.Add(d) }

// Rate is operations per second.
func (r *Result) Rate() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// MBps is megabytes (10^6) per second.
func (r *Result) MBps() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// Percentile is the latency below which a fraction q of the timed
// operations fall; 0 when none were timed.
func (r *Result) Percentile(q float64) time.Duration {
	if r.lat == nil {
		return 0
	}
	return r.lat.Percentile(q)
}

// Mean is the mean latency of the timed operations.
func (r *Result) Mean() time.Duration {
	if r.lat == nil {
		return 0
	}
	return r.lat.Mean()
}

// Samples are the timed operations' latencies; nil when none were timed.
func (r *Result) Samples() *latency.Samples { return r.lat }

// String is a summary in the manner of kafka-producer-perf-test.
func (r *Result) String() string {
	s := fmt.Sprintf("%s: %d ops in %.2f s, %.1f ops/sec", r.Workload, r.Ops, r.Elapsed.Seconds(), r.Rate())
	if r.Bytes > 0 {
		s += fmt.Sprintf(" (%.2f MB/sec)", r.MBps())
	}
	if r.Percentile(1) > 0 {
		s += fmt.Sprintf(", %s avg latency, %s max latency, %s 50th, %s 95th, %s 99th, %s 99.9th",
			ms(r.Mean()), ms(r.Percentile(1)), ms(r.Percentile(0.5)), ms(r.Percentile(0.95)), ms(r.Percentile(0.99)), ms(r.Percentile(0.999)))
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
