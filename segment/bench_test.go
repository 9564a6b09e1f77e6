package segment_test

// Benchmarks of the storage engine on the real file system. Each runs its
// baseline in the same run (plain write + fdatasync, or pread, of the same
// sizes in the same directory) so that the result reads as a ratio:
//
//	go test -run '^$' -bench . -count 6 ./segment/ | tee bench.txt
//	benchstat -col /impl bench.txt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func benchStore(b *testing.B, profile segment.Profile) *segment.Store {
	b.Helper()
	st, err := segment.OpenStore(b.TempDir(), segment.StoreOptions{Profile: profile, RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func benchLog(b *testing.B, st *segment.Store, prezero, mmapWrites bool) *segment.Log {
	b.Helper()
	cfg := segment.DefaultConfig()
	cfg.Prezero = prezero
	cfg.MmapWrites = mmapWrites
	cfg.MaxMessageBytes = 2 << 20
	l, err := st.Open("bench", 0, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// rawAppender is the baseline: a plain file written at its end with pwrite
// and made durable with fdatasync after every write.
type rawAppender struct {
	f   *os.File
	off int64
}

func newRawAppender(b *testing.B) *rawAppender {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return &rawAppender{f: f}
}

func (r *rawAppender) append(p []byte) error {
	if _, err := r.f.WriteAt(p, r.off); err != nil {
		return err
	}
	r.off += int64(len(p))
	return unix.Fdatasync(int(r.f.Fd()))
}

var sizes = []struct {
	name string
	n    int
}{{"4KiB", 4 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// BenchmarkDurableAppend: one writer, each append durable before the next.
func BenchmarkDurableAppend(b *testing.B) {
	for _, sz := range sizes {
		batch := segmenttest.Sized(1, sz.n)
		b.Run(fmt.Sprintf("size=%s/impl=raw", sz.name), func(b *testing.B) {
			r := newRawAppender(b)
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				if err := r.append(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, v := range []struct {
			name             string
			prezero, mmapped bool
		}{{"chronik", true, false}, {"chronik-noprezero", false, false}, {"chronik-mmap", true, true}, {"chronik-mmap-noprezero", false, true}} {
			b.Run(fmt.Sprintf("size=%s/impl=%s", sz.name, v.name), func(b *testing.B) {
				l := benchLog(b, benchStore(b, segment.ProfileLow), v.prezero, v.mmapped)
				b.SetBytes(int64(len(batch)))
				for b.Loop() {
					a, err := l.Append(batch, 0, 1)
					if err == nil {
						err = a.Wait()
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGroupCommit: W writers each appending 1 KiB batches and waiting
// for durability, per WAL profile; the baseline is one fdatasync per write
// (writers serialised on one file).
func BenchmarkGroupCommit(b *testing.B) {
	batch := segmenttest.Sized(1, 1024)
	for _, writers := range []int{1, 16, 128, 1024} {
		b.Run(fmt.Sprintf("writers=%d/impl=raw", writers), func(b *testing.B) {
			r := newRawAppender(b)
			var mu sync.Mutex
			runWriters(b, writers, func() error {
				mu.Lock()
				defer mu.Unlock()
				return r.append(batch)
			})
		})
		for _, p := range segment.Profiles {
			b.Run(fmt.Sprintf("writers=%d/impl=chronik-%s", writers, p.Name), func(b *testing.B) {
				l := benchLog(b, benchStore(b, p), true, false)
				runWriters(b, writers, func() error {
					a, err := l.Append(batch, 0, 1)
					if err != nil {
						return err
					}
					return a.Wait()
				})
			})
		}
	}
}

// runWriters runs b.N calls of op spread over n goroutines and reports
// acks/s and the p50 and p99 latency of one call.
func runWriters(b *testing.B, n int, op func() error) {
	b.Helper()
	lat := latency.New(b.N)
	var next sync.Mutex
	i := 0
	take := func() int {
		next.Lock()
		defer next.Unlock()
		if i >= b.N {
			return -1
		}
		i++
		return i - 1
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for k := take(); k >= 0; k = take() {
				t0 := time.Now()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
				lat.Add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	latency.Report(b, "acks", int64(b.N), elapsed, lat)
}

// readFixture writes n bytes of 64 KiB batches and returns the store's log.
func readFixture(b *testing.B, n int) (*segment.Log, string) {
	b.Helper()
	dir := b.TempDir()
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	l, err := st.Open("read", 0, segment.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	batch := segmenttest.Sized(1, 64<<10)
	var last *segment.Appended
	for range n / len(batch) {
		if last, err = l.Append(batch, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	_ = last
	for l.HighWatermark() < l.EndOffset() {
		<-l.Wait()
	}
	return l, filepath.Join(dir, "read-0", "00000000000000000000.log")
}

// BenchmarkSequentialRead: reading a 256 MiB log front to back in 1 MiB
// fetches through the mapping, against pread of the same file.
func BenchmarkSequentialRead(b *testing.B) {
	const total = 256 << 20
	l, path := readFixture(b, total)
	size := l.Size()
	buf := make([]byte, 0, 2<<20)
	b.Run("impl=pread", func(b *testing.B) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(size)
		p := make([]byte, 1<<20)
		for b.Loop() {
			for off := int64(0); off < size; off += int64(len(p)) {
				if _, err := f.ReadAt(p[:min(int64(len(p)), size-off)], off); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("impl=chronik", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			for off := l.StartOffset(); off < l.HighWatermark(); {
				out, err := l.Read(off, 1<<20, buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				off += int64(len(out) / (64 << 10))
			}
		}
	})
}

// BenchmarkRecovery: opening a partition holding 1 GiB after an unclean
// stop, with the page cache warm. active: one 1 GiB active segment, all of
// it CRC-checked; sealed: eight 128 MiB segments (only the last is
// scanned). The baseline reads the same bytes with pread.
func BenchmarkRecovery(b *testing.B) {
	const total = 1 << 30
	for _, c := range []struct {
		name    string
		segment int64
	}{{"active", 1<<30 + 64<<20}, {"sealed", 128 << 20}} {
		dir := b.TempDir()
		cfg := segment.DefaultConfig()
		cfg.SegmentBytes = min(c.segment, 1<<30)
		if c.segment > 1<<30 {
			cfg.SegmentBytes = 1 << 30
		}
		func() {
			st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			l, err := st.Open("rec", 0, cfg)
			if err != nil {
				b.Fatal(err)
			}
			batch := segmenttest.Sized(1, 256<<10)
			n := total / len(batch)
			if c.name == "active" {
				n-- // stay inside the one active segment
			}
			// Fast, but within the write queue's bounds: when it is full,
			// wait for the last batch to be durable and go on.
			var last *segment.Appended
			for i := 0; i < n; {
				a, err := l.Append(batch, 0, 1)
				if errors.Is(err, segment.ErrQueueFull) && last != nil {
					if err := last.Wait(); err != nil {
						b.Fatal(err)
					}
					last = nil
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				last = a
				i++
			}
			if last != nil {
				if err := last.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		}()
		// Forget the recovery point: the open scans as after a crash.
		os.Remove(filepath.Join(dir, "rec-0", "recovery-point"))
		b.Run("case="+c.name+"/impl=pread", func(b *testing.B) {
			p := make([]byte, 4<<20)
			names, _ := filepath.Glob(filepath.Join(dir, "rec-0", "*.log"))
			b.SetBytes(total)
			for b.Loop() {
				for _, name := range names {
					f, err := os.Open(name)
					if err != nil {
						b.Fatal(err)
					}
					for off := int64(0); ; off += int64(len(p)) {
						n, err := f.ReadAt(p, off)
						if n < len(p) || err != nil {
							break
						}
					}
					f.Close()
				}
			}
		})
		b.Run("case="+c.name+"/impl=chronik", func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := st.Open("rec", 0, cfg); err != nil {
					b.Fatal(err)
				}
				st.Close()
			}
		})
	}
}

// BenchmarkOpenFile opens and closes an existing file: with os.OpenFile
// (impl=os) and with the OSFS chronik opens segments, indexes and their
// companions through (impl=chronik).
func BenchmarkOpenFile(b *testing.B) {
	name := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	open := map[string]func() (io.Closer, error){
		"os":      func() (io.Closer, error) { return os.OpenFile(name, os.O_RDWR, 0) },
		"chronik": func() (io.Closer, error) { return segment.OSFS{}.OpenFile(name, os.O_RDWR, 0) },
	}
	for _, impl := range []string{"os", "chronik"} {
		b.Run("impl="+impl, func(b *testing.B) {
			for b.Loop() {
				f, err := open[impl]()
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
