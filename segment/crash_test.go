package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// stored is how a batch appended at base with epoch looks on disk.
func stored(b []byte, base int64, epoch int32) []byte {
	out := bytes.Clone(b)
	binary.BigEndian.PutUint64(out[0:], uint64(base))
	binary.BigEndian.PutUint32(out[12:], uint32(epoch))
	return out
}

// waitSparesReady waits until st has n spares ready.
func waitSparesReady(t *testing.T, st *segment.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st.SparesReady() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d spares ready, want %d", st.SparesReady(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestCrashKeepsAcknowledgedWrites crashes the file system at a random
// moment under concurrent appends to several partitions (in half the seeds
// after a few failed syncs, which lose what they did not make durable),
// reopens, and checks that every acknowledged batch is there byte for byte
// and that what is served is a gap-free run of valid batches that were
// really written.
var crashSeeds = flag.Int("crash-seeds", 300, "seeds for TestCrashKeepsAcknowledgedWrites")

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	seeds := *crashSeeds
	if testing.Short() {
		seeds = min(seeds, 50)
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashOnce(t, seed) })
	}
}

type crashHistory struct {
	mu      sync.Mutex
	crashed bool
	acked   map[string]map[int64][]byte // partition -> base -> stored bytes
	// written holds every batch written at each base: after a failed
	// sync the log's end moves back and later appends reuse the offsets.
	written map[string]map[int64][][]byte
	acks    int
	stopped int // writers that ended
	// appending is each writer's batch from before its Append until it
	// is noted in written.
	appending [4][]byte
}

func crashOnce(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := segmenttest.NewMemFS()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = int64(8<<10 + rng.IntN(24<<10))
	cfg.PreallocateBytes = int64(2<<10 + rng.IntN(8<<10))
	cfg.IndexIntervalBytes = 512
	cfg.Prezero = rng.IntN(2) == 0
	cfg.MmapWrites = rng.IntN(2) == 0
	cfg.RecoveryPointInterval = time.Hour
	if rng.IntN(2) == 0 {
		cfg.RecoveryPointInterval = time.Microsecond
	}
	profile := segment.Profile{Name: "test", MaxWrites: 1 + rng.IntN(8), MaxBytes: 64 << 10, MaxWait: time.Duration(rng.IntN(2)) * time.Millisecond, QueueDepth: 1000}
	parts := []string{"a", "b", "c"}[:1+rng.IntN(3)]
	// Half the seeds keep spare partition directories, enough for every
	// partition: the first open renames them into place.
	spares := rng.IntN(2) * len(parts)

	open := func(fs *segmenttest.MemFS) (*segment.Store, map[string]*segment.Log) {
		st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, Profile: profile, RetentionCheckInterval: -1, Spares: spares})
		if err != nil {
			t.Fatal(err)
		}
		first := false
		if names, _ := fs.ReadDir("/d"); spares > 0 && !slices.Contains(names, parts[0]+"-0") {
			waitSparesReady(t, st, spares)
			first = true
		}
		logs := map[string]*segment.Log{}
		for _, p := range parts {
			l, err := st.OpenWithSpare(p, 0, cfg)
			if err != nil {
				t.Fatalf("seed %d: open %s after crash: %v", seed, p, err)
			}
			logs[p] = l
		}
		if names, _ := fs.ReadDir("/d"); first && slices.Contains(names, fmt.Sprintf("spare~%d", spares)) {
			t.Fatalf("seed %d: the first partition was made while a spare was ready: %v", seed, names)
		}
		return st, logs
	}
	st, logs := open(fs)
	h := &crashHistory{acked: map[string]map[int64][]byte{}, written: map[string]map[int64][][]byte{}}
	for _, p := range parts {
		h.acked[p], h.written[p] = map[int64][]byte{}, map[int64][][]byte{}
	}
	if rng.IntN(2) == 0 {
		// A clean stop first: the logs then open trusting their recovery
		// points (the clean-shutdown mark), and the crash comes after.
		for i := range 1 + rng.IntN(20) {
			p := parts[rng.IntN(len(parts))]
			b := segmenttest.Sized(int64(1_000_000+i), 80+rng.IntN(3000))
			a, err := logs[p].Append(b, 3, 1)
			if err == nil {
				err = a.Wait()
			}
			if err != nil {
				t.Fatalf("seed %d: append before the clean stop: %v", seed, err)
			}
			h.written[p][a.Base], h.acked[p][a.Base] = [][]byte{stored(b, a.Base, 3)}, stored(b, a.Base, 3)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("seed %d: clean stop: %v", seed, err)
		}
		st, logs = open(fs)
	}
	crashAfter := 1 + rng.IntN(150)
	// Half the seeds also fail a few syncs on the way, on a file system
	// that then loses what the failed sync did not make durable.
	var failAt []int
	if rng.IntN(2) == 0 {
		fs.FailedSyncsLoseWrites()
		for range 1 + rng.IntN(3) {
			failAt = append(failAt, rng.IntN(crashAfter))
		}
		slices.Sort(failAt)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wrng := rand.New(rand.NewPCG(seed, uint64(w)+10))
		wg.Go(func() {
			defer func() {
				h.mu.Lock()
				h.stopped++
				h.mu.Unlock()
			}()
			for i := 0; ; i++ {
				p := parts[wrng.IntN(len(parts))]
				b := segmenttest.Sized(int64(i), 80+wrng.IntN(3000))
				h.mu.Lock()
				h.appending[w] = b // the crash may come before it is noted as written
				h.mu.Unlock()
				a, err := logs[p].Append(b, 3, 1)
				if err != nil {
					return
				}
				h.mu.Lock()
				if !h.crashed {
					h.written[p][a.Base] = append(h.written[p][a.Base], stored(b, a.Base, 3))
					h.appending[w] = nil
				}
				h.mu.Unlock()
				if err := a.Wait(); err != nil {
					h.mu.Lock()
					goOn := errors.Is(err, segment.ErrSyncFailed) && !h.crashed
					h.mu.Unlock()
					if goOn {
						continue // not acknowledged; the log goes on
					}
					return // keeping what it appended in appending
				}
				h.mu.Lock()
				if h.crashed {
					h.mu.Unlock()
					return
				}
				h.acked[p][a.Base] = stored(b, a.Base, 3)
				h.acks++
				h.mu.Unlock()
			}
		})
	}
	for {
		h.mu.Lock()
		for len(failAt) > 0 && h.acks >= failAt[0] {
			fs.FailSyncs(1)
			failAt = failAt[1:]
		}
		if h.acks >= crashAfter || h.stopped == 4 { // or every writer met a failed log
			h.crashed = true
			fs = fs.Crash(rng)
			h.mu.Unlock()
			break
		}
		h.mu.Unlock()
		time.Sleep(50 * time.Microsecond)
	}
	wg.Wait()
	st.Close() // fails on the crashed file system; nothing of it survives

	st, logs = open(fs)
	defer func() { st.Close() }()
	for _, p := range parts {
		l := logs[p]
		served := map[int64][]byte{}
		for off := l.StartOffset(); off < l.HighWatermark(); {
			b, err := l.Read(off, 1, nil)
			if err != nil {
				t.Fatalf("seed %d: %s: read %d: %v", seed, p, off, err)
			}
			hd, err := segment.ValidateBatch(b, 0)
			if err != nil || hd.BaseOffset != off {
				t.Fatalf("seed %d: %s: served batch at %d invalid (base %d): %v", seed, p, off, hd.BaseOffset, err)
			}
			same := func(w []byte) bool { return bytes.Equal(w, b) }
			if w, ok := h.written[p][off]; ok && !slices.ContainsFunc(w, same) && !slices.ContainsFunc(h.appending[:], func(a []byte) bool { return a != nil && same(stored(a, off, 3)) }) {
				t.Fatalf("seed %d: %s: batch at %d differs from what was written", seed, p, off)
			}
			served[off] = b
			off = hd.LastOffset() + 1
		}
		for base, want := range h.acked[p] {
			if !bytes.Equal(served[base], want) {
				t.Fatalf("seed %d: %s: acknowledged batch at %d lost (log end %d; served there: %d bytes, one written there: %v; %d written there)", seed, p, base, l.EndOffset(), len(served[base]), slices.ContainsFunc(h.written[p][base], func(w []byte) bool { return bytes.Equal(w, served[base]) }), len(h.written[p][base]))
			}
		}
		// The recovered log takes appends and survives a clean restart.
		if a, err := l.Append(segmenttest.Values(1, "after"), 4, 1); err != nil || a.Wait() != nil {
			t.Fatalf("seed %d: append after recovery: %v", seed, err)
		}
	}
	end := map[string]int64{}
	for p, l := range logs {
		end[p] = l.EndOffset()
	}
	st.Close()
	st, logs = open(fs)
	for p, l := range logs {
		if l.EndOffset() != end[p] {
			t.Fatalf("seed %d: %s: end %d after clean restart, want %d", seed, p, l.EndOffset(), end[p])
		}
	}
}

func TestCorruptionBeforeRecoveryPointRefusesToOpen(t *testing.T) {
	e := newEnv(t, smallConfig())
	for range 5 {
		e.append(segmenttest.Sized(1, 300))
	}
	e.store.Close()
	path := "/data/orders-0/00000000000000000000.log"
	b, _ := e.fs.ReadFile(path)
	b[2*300+100] ^= 0xff // inside the third batch
	e.fs.WriteFile(path, b)
	st, err := segment.OpenStore("/data", segment.StoreOptions{FS: e.fs, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Open("orders", 0, e.cfg)
	var ce *segment.CorruptionError
	if !errors.Is(err, segment.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("open of a corrupt log: %v", err)
	}
	if ce.Path != path || ce.Offset != 2 || ce.Position != 600 {
		t.Fatalf("corruption reported at %s offset %d position %d, want %s 2 600", ce.Path, ce.Offset, ce.Position, path)
	}
}

func TestTornTailIsTruncated(t *testing.T) {
	cfg := smallConfig()
	cfg.RecoveryPointInterval = time.Hour
	e := newEnv(t, cfg)
	for range 3 {
		e.append(segmenttest.Sized(1, 300))
	}
	e.store.Close()
	path := "/data/orders-0/00000000000000000000.log"
	b, _ := e.fs.ReadFile(path)
	// Half of a fourth batch after the recovery point, as a crash leaves it.
	half := stored(segmenttest.Sized(1, 300), 3, 7)[:150]
	copy(b[900:], half)
	e.fs.WriteFile(path, b)
	e.open()
	if e.log.EndOffset() != 3 {
		t.Fatalf("end %d after torn tail, want 3", e.log.EndOffset())
	}
	// The torn bytes were zeroed: a later, shorter batch cannot be followed
	// by stale bytes.
	got, _ := e.fs.ReadFile(path)
	for i := 900; i < 1050; i++ {
		if got[i] != 0 {
			t.Fatalf("torn tail not zeroed at %d", i)
		}
	}
	e.append(segmenttest.Sized(1, 100))
	e.reopen()
	if e.log.EndOffset() != 4 {
		t.Fatalf("end %d, want 4", e.log.EndOffset())
	}
}

func TestFailedSyncFailsWaitersAndDropsData(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(1, "kept"))
	e.fs.FailSyncs(1)
	a, err := e.log.Append(segmenttest.Values(1, "lost"), 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); !errors.Is(err, segment.ErrSyncFailed) {
		t.Fatalf("wait: %v, want ErrSyncFailed", err)
	}
	if e.log.EndOffset() != 1 || e.log.HighWatermark() != 1 {
		t.Fatalf("log claims the failed write: end %d hw %d", e.log.EndOffset(), e.log.HighWatermark())
	}
	if st := e.store.Stats(); st.FailedSyncs != 1 || st.FailedAppends != 0 {
		t.Fatalf("Stats: %d failed syncs and %d failed appends, want 1 and 0", st.FailedSyncs, st.FailedAppends)
	}
	if b, err := e.log.Read(1, 1<<20, nil); err != nil || len(b) != 0 {
		t.Fatalf("read past failed write: %d bytes, %v", len(b), err)
	}
	// The log goes on: the next batch takes offset 1.
	next := segmenttest.Values(1, "next")
	if a := e.append(next); a.Base != 1 {
		t.Fatalf("next append at %d, want 1", a.Base)
	}
	e.reopen()
	b, err := e.log.Read(1, 1<<20, nil)
	if err != nil || !bytes.Equal(b, stored(next, 1, 7)) {
		t.Fatalf("after reopen offset 1 holds %q, %v", b, err)
	}
}

func TestFullDiskIsAnAppendError(t *testing.T) {
	cfg := smallConfig()
	cfg.PreallocateBytes = 4096
	e := newEnv(t, cfg)
	e.fs.SetCapacity(16 << 10)
	var err error
	n := 0
	for ; n < 100; n++ {
		var a *segment.Appended
		if a, err = e.log.Append(segmenttest.Sized(1, 1000), 0, 1); err != nil {
			break
		}
		if err = a.Wait(); err != nil {
			break
		}
	}
	if err == nil || n == 0 {
		t.Fatalf("no error after %d appends on a full disk", n)
	}
	if e.log.EndOffset() != int64(n) {
		t.Fatalf("end %d after %d good appends", e.log.EndOffset(), n)
	}
	e.fs.SetCapacity(0)
	e.append(segmenttest.Sized(1, 1000))
	e.reopen()
	if e.log.EndOffset() != int64(n)+1 {
		t.Fatalf("end %d after reopen, want %d", e.log.EndOffset(), n+1)
	}
}

// TestFullDiskTakesWhatFits: with less room than a preallocation step,
// appends go on into what is left, then fail.
func TestFullDiskTakesWhatFits(t *testing.T) {
	cfg := smallConfig()
	cfg.PreallocateBytes = 64 << 10
	e := newEnv(t, cfg)
	e.fs.SetCapacity(e.fs.Allocated() + 16<<10)
	n := 0
	for ; n < 100; n++ {
		a, err := e.log.Append(segmenttest.Sized(1, 1000), 0, 1)
		if err == nil {
			err = a.Wait()
		}
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append %d: %v, want ENOSPC", n, err)
			}
			break
		}
	}
	// 16 KiB hold at least 14 batches of about 1,070 bytes.
	if n < 14 || n == 100 {
		t.Fatalf("%d appends into 16 KiB left on the disk", n)
	}
	e.reopen()
	if e.log.EndOffset() != int64(n) {
		t.Fatalf("end %d after reopen, want %d", e.log.EndOffset(), n)
	}
}

func TestQueueFullIsRetriable(t *testing.T) {
	fs := segmenttest.NewMemFS()
	st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, Profile: segment.Profile{Name: "tiny", MaxWrites: 1, MaxBytes: 1 << 20, QueueDepth: 2}, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, _ := st.Open("t", 0, smallConfig())
	var handles []*segment.Appended
	full := 0
	for range 200 {
		a, err := l.Append(segmenttest.Values(1, "x"), 0, 1)
		if errors.Is(err, segment.ErrQueueFull) {
			full++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, a)
	}
	for _, a := range handles {
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if l.EndOffset() != int64(len(handles)) {
		t.Fatalf("end %d, %d accepted: a refused write was kept or an accepted one dropped", l.EndOffset(), len(handles))
	}
	t.Logf("%d accepted, %d refused with ErrQueueFull", len(handles), full)
}

func TestFailedWriteWritesNothing(t *testing.T) {
	for _, mmapWrites := range []bool{false, true} {
		t.Run(fmt.Sprintf("mmap=%v", mmapWrites), func(t *testing.T) {
			cfg := smallConfig()
			cfg.MmapWrites = mmapWrites
			e := newEnv(t, cfg)
			e.append(segmenttest.Values(1, "kept"))
			e.fs.FailWrites(1)
			_, err := e.log.Append(segmenttest.Sized(1, 500), 7, 1)
			if mmapWrites {
				// Copies into the mapping cannot fail: the injection is unused.
				e.fs.FailWrites(0)
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, segmenttest.ErrInjected) {
				t.Fatalf("append with a failing write: %v", err)
			}
			if e.log.EndOffset() != 1 {
				t.Fatalf("end %d after a failed write, want 1", e.log.EndOffset())
			}
			next := segmenttest.Values(1, "next")
			if a := e.append(next); a.Base != 1 {
				t.Fatalf("next append at %d", a.Base)
			}
			e.reopen()
			b, err := e.log.Read(1, 1<<20, nil)
			if err != nil || !bytes.Equal(b, stored(next, 1, 7)) || e.log.EndOffset() != 2 {
				t.Fatalf("after reopen: end %d, offset 1 holds %d bytes, %v", e.log.EndOffset(), len(b), err)
			}
		})
	}
}
