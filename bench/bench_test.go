package bench

// Each benchmark runs its workload against chronik (in-process, syncing to
// disk before every acknowledgement), franz-go's kfake in memory, and,
// where produce is measured, kfake's BlackholeProduce (the protocol alone)
// or the disk's own write+fdatasync rate, as sub-benchmarks named
// target=...; `benchstat -col /target` puts them side by side with the
// ratio. b.N is the number of operations (topics, records).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func start(b *testing.B, target string) *Target {
	b.Helper()
	var t *Target
	var err error
	switch target {
	case "chronik":
		t, err = StartChronik(b.TempDir(), segment.ProfileLow)
	case "chronik-tmpfs":
		t, err = StartChronik(segmenttest.TmpfsDir(b), segment.ProfileLow)
	case "kfake":
		t, err = StartKfake(false)
	case "kfake-blackhole":
		t, err = StartKfake(true)
	case "sync-floor":
		t, err = StartSyncFloor(b.TempDir())
	default:
		b.Fatalf("unknown target %s", target)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.Close)
	return t
}

func report(b *testing.B, r *Result, unit string) {
	b.Helper()
	if r.Bytes > 0 {
		b.ReportMetric(r.MBps(), "MB/s")
	}
	latency.Report(b, unit, r.Ops, r.Elapsed, r.Samples())
}

func ctx(b *testing.B) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	return c
}

var targets = []string{"chronik", "kfake"}

// warmUp is the untimed load each target gets before a throughput run: the
// first target run in a process otherwise paid for growing the heap (the
// same 100 B produce ran at 0.66, 1.04 and 1.24 M records/s in one
// process), and the targets run in a fixed order.
func warmUp(n int) int { return max(n/10, 1) }

// syncTargets add the disk's floor for one sync per operation: a 512 B
// write + fdatasync into a zeroed file, as chronik's metadata and
// partition logs write.
var syncTargets = []string{"chronik", "kfake", "disk"}

func diskFloor(b *testing.B) {
	r, err := DiskWrite(b.TempDir(), max(b.N, 1)*512, 512, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	report(b, r, "syncs")
}

// BenchmarkCreateTopics: topics created one request after another, 1 or
// 100 a request. target=sync-floor is the least a broker that syncs each
// request before answering can do here (StartSyncFloor): the protocol,
// the client and one write + fdatasync, with no broker behind them.
func BenchmarkCreateTopics(b *testing.B) {
	for _, per := range []int{1, 100} {
		for _, target := range slices.Concat(syncTargets, []string{"sync-floor"}) {
			if target == "disk" && per != 1 {
				continue
			}
			b.Run(fmt.Sprintf("per=%d/target=%s", per, target), func(b *testing.B) {
				if target == "disk" {
					diskFloor(b)
					return
				}
				t := start(b, target)
				r, err := CreateTopics(ctx(b), t.Addr, "t", b.N, per, nil)
				if err != nil {
					b.Fatal(err)
				}
				report(b, r, "topics")
			})
		}
	}
}

// BenchmarkFirstMessage: a topic created, then its first record produced
// and acknowledged. target=disk-new-partition is the file system's part
// of it alone (DiskNewPartition): one sync of the metadata log, then a new
// partition's directory and files and its first synced write.
func BenchmarkFirstMessage(b *testing.B) {
	benchSynced(b, "topics", func(b *testing.B, addr string) (*Result, error) {
		return FirstMessages(ctx(b), addr, "first", b.N, nil)
	})
	b.Run("target=disk-new-partition", func(b *testing.B) {
		r, err := DiskNewPartition(b.TempDir(), max(b.N, 1))
		if err != nil {
			b.Fatal(err)
		}
		report(b, r, "topics")
	})
}

func BenchmarkSingleMessage(b *testing.B) {
	benchSynced(b, "records", func(b *testing.B, addr string) (*Result, error) {
		return SingleMessages(ctx(b), addr, "single", b.N, 100, nil)
	})
}

// benchSynced runs a workload whose every operation waits for a sync
// against chronik and kfake, beside the disk's floor.
func benchSynced(b *testing.B, unit string, run func(b *testing.B, addr string) (*Result, error)) {
	for _, target := range syncTargets {
		b.Run("target="+target, func(b *testing.B) {
			if target == "disk" {
				diskFloor(b)
				return
			}
			r, err := run(b, start(b, target).Addr)
			if err != nil {
				b.Fatal(err)
			}
			report(b, r, unit)
		})
	}
}

// BenchmarkProduce: one batching client, acks=all, 4 partitions (kgo's
// idempotent producer keeps up to 5 requests in flight on Produce v4 and
// later). target=chronik-tmpfs is chronik storing in memory: the same work
// without the disk. The 1 KiB case also measures the disk writing the same
// bytes: sequentially, 16 MiB per fdatasync into a zeroed file (of 1, 4
// and 16 MiB, the rate closest to the device's: target=disk), and in the
// pattern the client makes, 1 MiB (its largest batch) to each of 4 files
// per round of parallel fdatasyncs, into files allocated as chronik's
// segments are (target=disk-4x1MiB) or zeroed (target=disk-4x1MiB-zeroed).
func BenchmarkProduce(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, target := range []string{"chronik", "chronik-tmpfs", "kfake", "kfake-blackhole", "disk", "disk-4x1MiB", "disk-4x1MiB-zeroed"} {
			if strings.HasPrefix(target, "disk") && size != 1024 {
				continue
			}
			b.Run(fmt.Sprintf("size=%d/target=%s", size, target), func(b *testing.B) {
				if strings.HasPrefix(target, "disk") {
					diskWrites(b, target, size)
					return
				}
				t := start(b, target)
				if _, err := Produce(ctx(b), t.Addr, "warm-up", 4, warmUp(b.N), size, nil); err != nil {
					b.Fatal(err)
				}
				r, err := Produce(ctx(b), t.Addr, "produce", 4, b.N, size, nil)
				if err != nil {
					b.Fatal(err)
				}
				report(b, r, "records")
			})
		}
	}
}

// diskWrites measures the disk writing what b.N records of size bytes
// take, as the target says: 16 MiB per fdatasync into a zeroed file
// (disk) or into one allocated as chronik's segments are, not written
// (disk-allocated), or 1 MiB to each of 4 files per round of parallel
// fdatasyncs, allocated (disk-4x1MiB) or zeroed (disk-4x1MiB-zeroed).
func diskWrites(b *testing.B, target string, size int) {
	chunk, files, zeroed := 16<<20, 1, true
	switch target {
	case "disk-allocated": // as chronik's segments: allocated, not written
		zeroed = false
	case "disk-4x1MiB":
		chunk, files, zeroed = 1<<20, 4, false
	case "disk-4x1MiB-zeroed":
		chunk, files, zeroed = 1<<20, 4, true
	}
	r, err := DiskWrite(b.TempDir(), max(b.N*size, chunk*files), chunk, files, zeroed)
	if err != nil {
		b.Fatal(err)
	}
	report(b, r, "writes")
}

// BenchmarkProduceBatches: 1 KiB records to 4 partitions in batches
// encoded once and sent again and again (ProduceBatches), so that the
// client's CPU does not bound what the broker can store: the broker's
// storage path against the disk writing the same bytes.
func BenchmarkProduceBatches(b *testing.B) {
	const size = 1024
	for _, target := range []string{"chronik", "chronik-tmpfs", "kfake-blackhole", "disk", "disk-allocated", "disk-4x1MiB"} {
		b.Run(fmt.Sprintf("size=%d/target=%s", size, target), func(b *testing.B) {
			if strings.HasPrefix(target, "disk") {
				diskWrites(b, target, size)
				return
			}
			t := start(b, target)
			if _, err := ProduceBatches(ctx(b), t.Addr, "warm-up", 4, warmUp(b.N), size, nil); err != nil {
				b.Fatal(err)
			}
			r, err := ProduceBatches(ctx(b), t.Addr, "produce", 4, b.N, size, nil)
			if err != nil {
				b.Fatal(err)
			}
			report(b, r, "records")
		})
	}
}

func BenchmarkConcurrentProducers(b *testing.B) {
	const producers = 128
	for _, target := range targets {
		b.Run("target="+target, func(b *testing.B) {
			t := start(b, target)
			if _, err := ConcurrentProducers(ctx(b), t.Addr, "warm-up", producers, max(warmUp(b.N)/producers, 1), 100, nil); err != nil {
				b.Fatal(err)
			}
			r, err := ConcurrentProducers(ctx(b), t.Addr, "concurrent", producers, max(b.N/producers, 1), 100, nil)
			if err != nil {
				b.Fatal(err)
			}
			report(b, r, "acks")
		})
	}
}

// BenchmarkConsume reads b.N 1 KiB records from the start; producing them
// is not timed.
func BenchmarkConsume(b *testing.B) {
	for _, target := range targets {
		b.Run("target="+target, func(b *testing.B) {
			t := start(b, target)
			b.StopTimer()
			if _, err := Produce(ctx(b), t.Addr, "consume", 4, b.N, 1024, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := Consume(ctx(b), t.Addr, "consume", warmUp(b.N), nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			r, err := Consume(ctx(b), t.Addr, "consume", b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			report(b, r, "records")
		})
	}
}

// BenchmarkTransactions: one transactional producer, each transaction a
// 100 B record to each of 1 or 16 partitions and a commit, one after
// another. chronik syncs the transaction's registration, its records, the
// decision, a marker in each partition and the completion; target
// chronik-tmpfs is the same without the disk, kfake the protocol in memory.
func BenchmarkTransactions(b *testing.B) {
	for _, parts := range []int32{1, 16} {
		for _, target := range []string{"chronik", "chronik-tmpfs", "kfake"} {
			b.Run(fmt.Sprintf("partitions=%d/target=%s", parts, target), func(b *testing.B) {
				t := start(b, target)
				r, err := Transactions(ctx(b), t.Addr, "txn", parts, b.N, 100, nil)
				if err != nil {
					b.Fatal(err)
				}
				report(b, r, "txns")
			})
		}
	}
}
