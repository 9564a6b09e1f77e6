package eventlog

// Benchmarks of the metadata log on the real file system, each with its
// baseline in the same run:
//
//	go test -run '^$' -bench . -count 6 ./eventlog/ | tee bench.txt
//	benchstat -col /impl bench.txt

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
)

func benchLog(b *testing.B, dir string, opts Options) (*Log, *segment.Store) {
	b.Helper()
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = -1
	}
	l, err := Open(st, opts)
	if err != nil {
		b.Fatal(err)
	}
	return l, st
}

func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	s := latency.New(len(lat))
	for _, d := range lat {
		s.Add(d)
	}
	latency.Report(b, "events", int64(len(lat)), elapsed, s)
}

// BenchmarkAppendOne: one event (a PartitionChanged, as a leader move
// writes) appended and made durable at a time; the baseline writes a batch
// of the same size with pwrite and fdatasync.
func BenchmarkAppendOne(b *testing.B) {
	ev := &PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}
	size := len(buildBatch([]Event{ev}, 0, 0))
	b.Run("impl=raw", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		p := make([]byte, size)
		lat := make([]time.Duration, 0, b.N)
		start := time.Now()
		off := int64(0)
		for b.Loop() {
			t0 := time.Now()
			f.WriteAt(p, off)
			off += int64(size)
			unix.Fdatasync(int(f.Fd()))
			lat = append(lat, time.Since(t0))
		}
		reportLatency(b, lat, time.Since(start))
	})
	b.Run("impl=chronik", func(b *testing.B) {
		l, st := benchLog(b, b.TempDir(), Options{})
		defer st.Close()
		if _, err := l.Append(reg(1, inc1)); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(&TopicCreated{Name: "orders", TopicID: tid1, PartitionCount: 1, ReplicationFactor: 1}); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			ev.LeaderEpoch = int32(i)
			t0 := time.Now()
			if _, err := l.Append(ev); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportLatency(b, lat, time.Since(start))
	})
}

// BenchmarkConcurrentAppends: 64 writers each appending one event and
// waiting for it; the baseline serialises them with one fdatasync each.
func BenchmarkConcurrentAppends(b *testing.B) {
	const writers = 64
	size := len(buildBatch([]Event{&TopicCreated{Name: "w00-t0000000", TopicID: tid1, PartitionCount: 1, ReplicationFactor: 1}}, 0, 0))
	run := func(b *testing.B, op func(w, i int) error) {
		lat := make([][]time.Duration, writers)
		var next sync.Mutex
		n := 0
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := 0; ; i++ {
					next.Lock()
					if n >= b.N {
						next.Unlock()
						return
					}
					n++
					next.Unlock()
					t0 := time.Now()
					if err := op(w, i); err != nil {
						b.Error(err)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		reportLatency(b, slices.Concat(lat...), elapsed)
	}
	b.Run("impl=raw", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var mu sync.Mutex
		off := int64(0)
		p := make([]byte, size)
		run(b, func(int, int) error {
			mu.Lock()
			defer mu.Unlock()
			f.WriteAt(p, off)
			off += int64(size)
			return unix.Fdatasync(int(f.Fd()))
		})
	})
	b.Run("impl=chronik", func(b *testing.B) {
		l, st := benchLog(b, b.TempDir(), Options{})
		defer st.Close()
		run(b, func(w, i int) error {
			_, err := l.Append(&TopicCreated{Name: fmt.Sprintf("w%02d-t%07d", w, i), TopicID: NewUUID(), PartitionCount: 1, ReplicationFactor: 1})
			return err
		})
	})
}

// BenchmarkApply: the state machine alone, CPU only: a topic creation with
// its partition, then a leader move, per two events.
func BenchmarkApply(b *testing.B) {
	s := NewState()
	Apply(s, reg(1, inc1), reg(2, inc2))
	events := make([][]Event, 0, 1024)
	for i := range 1024 {
		name := fmt.Sprintf("t%d", i)
		events = append(events, []Event{
			&TopicCreated{Name: name, TopicID: UUID{byte(i), byte(i >> 8), 1}, PartitionCount: 1, ReplicationFactor: 1},
			&PartitionChanged{Topic: name, Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1},
		})
	}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for i := 0; b.Loop(); i++ {
		g := events[i%len(events)]
		if i%len(events) == 0 && i > 0 {
			b.StopTimer()
			for _, g := range events {
				Apply(s, &TopicDeleted{Name: g[0].(*TopicCreated).Name, TopicID: g[0].(*TopicCreated).TopicID})
			}
			b.StartTimer()
		}
		for _, e := range g {
			if err := Apply(s, e); err != nil {
				b.Fatal(err)
			}
		}
		n += len(g)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// fillTopics registers broker 1 and creates n topics of parts partitions
// (one batch each) from 8 writers.
func fillTopics(b *testing.B, l *Log, n int, parts int32) {
	b.Helper()
	if _, err := l.Append(reg(1, inc1)); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := l.Append(createTopic(fmt.Sprintf("t%06d", i), parts)...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkReplay: opening a metadata log of 1,000,000 events (100,000
// topics of 9 partitions, as batches of 10 events) with no snapshot; the
// baseline reads the same files with pread.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	func() {
		l, st := benchLog(b, dir, Options{})
		defer st.Close()
		fillTopics(b, l, 100_000, 9)
	}()
	b.Run("impl=pread", func(b *testing.B) {
		names, _ := filepath.Glob(filepath.Join(dir, TopicName+"-0", "*.log"))
		p := make([]byte, 4<<20)
		for b.Loop() {
			for _, name := range names {
				f, _ := os.Open(name)
				for off := int64(0); ; off += int64(len(p)) {
					if n, err := f.ReadAt(p, off); n < len(p) || err != nil {
						break
					}
				}
				f.Close()
			}
		}
	})
	b.Run("impl=chronik", func(b *testing.B) {
		for b.Loop() {
			l, st := benchLog(b, dir, Options{})
			if l.Offset() != 1_000_001 {
				b.Fatalf("replayed to %d", l.Offset())
			}
			st.Close()
		}
	})
}

// BenchmarkStartWithSnapshot: opening a metadata log with a snapshot of
// 10,000 topics of 10 partitions and a tail of 1,000 events after it.
func BenchmarkStartWithSnapshot(b *testing.B) {
	dir := b.TempDir()
	func() {
		l, st := benchLog(b, dir, Options{})
		defer st.Close()
		fillTopics(b, l, 10_000, 10)
		if err := l.Snapshot(); err != nil {
			b.Fatal(err)
		}
		for i := range 1000 {
			l.Append(&PartitionChanged{Topic: fmt.Sprintf("t%06d", i), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1})
		}
	}()
	b.Run("impl=chronik", func(b *testing.B) {
		for b.Loop() {
			l, st := benchLog(b, dir, Options{})
			if l.Offset() != 110_001+1000 {
				b.Fatalf("offset %d", l.Offset())
			}
			st.Close()
		}
	})
}
