package segment_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

const (
	cleanMark    = "/data/clean-shutdown"
	firstSegment = "/data/orders-0/00000000000000000000.log"
)

// plantPastEnd writes a byte into the preallocated zeros at the end of the
// first segment, durably, as a torn write past the log's end would leave it.
func plantPastEnd(t *testing.T, fs *segmenttest.MemFS) int {
	t.Helper()
	data, err := fs.ReadFile(firstSegment)
	if err != nil || len(data) < 200 || data[len(data)-100] != 0 {
		t.Fatalf("segment: %d bytes, %v", len(data), err)
	}
	pos := len(data) - 100
	data[pos] = 0xff
	fs.WriteFile(firstSegment, data)
	return pos
}

// TestCleanShutdownIsTrusted: a store closed cleanly leaves the mark; the
// next open takes it away, durably, and the logs opened then trust their
// recovery points instead of reading what lies past them (a byte planted
// there stays). After a crash, a log reads its tail again and zeroes what
// follows its last batch.
func TestCleanShutdownIsTrusted(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(1, "a"))
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.ReadFile(cleanMark); err != nil {
		t.Fatalf("no clean-shutdown mark after a clean stop: %v", err)
	}
	pos := plantPastEnd(t, e.fs)
	e.open()
	if _, err := e.fs.ReadFile(cleanMark); err == nil {
		t.Fatal("the clean-shutdown mark is still there once the store is open")
	}
	if data, _ := e.fs.ReadFile(firstSegment); data[pos] != 0xff {
		t.Fatal("after a clean stop the log read past its recovery point")
	}
	if e.log.EndOffset() != 1 {
		t.Fatalf("end %d, want 1", e.log.EndOffset())
	}

	// A crash: the mark was removed durably at the open, so the next open
	// does not trust the recovery point.
	e.fs = e.fs.Crash(nil)
	e.open()
	if data, _ := e.fs.ReadFile(firstSegment); data[pos] != 0 {
		t.Fatal("after a crash the byte past the log's end was not zeroed")
	}
	if e.log.EndOffset() != 1 {
		t.Fatalf("end %d after the crash, want 1", e.log.EndOffset())
	}
	e.append(segmenttest.Values(1, "b"))
}

// TestFailedLogLeavesNoCleanMark: a store whose log failed does not mark
// its stop clean.
func TestFailedLogLeavesNoCleanMark(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(1, "a"))
	e.fs.FailSyncs(2) // the batch's sync, and the one after zeroing it
	if a, err := e.log.Append(segmenttest.Values(1, "b"), 7, 1); err == nil && a.Wait() == nil {
		t.Fatal("append with failing syncs succeeded")
	}
	e.store.Close()
	if _, err := e.fs.ReadFile(cleanMark); err == nil {
		t.Fatal("a store with a failed log marked its stop clean")
	}
}

// TestPreallocationStartsSmall: a new log reserves 64 KiB of disk ahead of
// its first batch, not a whole step; steps double as it grows, up to
// PreallocateBytes.
func TestPreallocationStartsSmall(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 64<<20, 1<<20
	e := newEnv(t, cfg)
	e.append(segmenttest.Values(1, "a"))
	data, err := e.fs.ReadFile(firstSegment)
	if err != nil || len(data) != 64<<10 {
		t.Fatalf("first segment holds %d bytes after one small batch (%v), want 64 KiB", len(data), err)
	}
	written := 0
	for written < 4<<20 {
		e.append(segmenttest.Sized(1, 16<<10))
		written += 16 << 10
	}
	data, _ = e.fs.ReadFile(firstSegment)
	if len(data) < written || len(data) > written+2<<20 {
		t.Fatalf("first segment holds %d bytes after %d written: steps should have reached 1 MiB, no more", len(data), written)
	}
}

// TestAckedWritesOutliveAnEarlierProcess: a partition made by a process
// that stopped before writing to it (closing cleanly, or killed while the
// machine kept running) and written by the next one keeps what that one
// acknowledged through a crash: its directory entries are made durable
// with the first write, not only when the partition is new.
func TestAckedWritesOutliveAnEarlierProcess(t *testing.T) {
	for _, clean := range []bool{true, false} {
		fs := segmenttest.NewMemFS()
		st, err := segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Open("orders", 0, smallConfig()); err != nil {
			t.Fatal(err)
		}
		if clean {
			st.Close()
		} // else: abandoned, as by SIGKILL; the files stay visible
		st, err = segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.Open("orders", 0, smallConfig())
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Append(segmenttest.Values(1, "acked"), 7, 1)
		if err == nil {
			err = a.Wait()
		}
		if err != nil {
			t.Fatal(err)
		}
		after := fs.Crash(nil)
		st, err = segment.OpenStore("/data", segment.StoreOptions{FS: after, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err = st.Open("orders", 0, smallConfig())
		if err != nil {
			t.Fatal(err)
		}
		if l.EndOffset() != 1 {
			t.Fatalf("clean stop %v: the acknowledged batch is gone after the crash (end %d; files %v)", clean, l.EndOffset(), after.Files())
		}
		st.Close()
	}
}

// TestRecoveryPointOutranksTheLastProcess: the recovery point a process
// writes first outranks the ones the process before left in the file's
// two slots, so damage to a batch it recorded as synced is corruption, not
// a torn tail cut away in silence.
func TestRecoveryPointOutranksTheLastProcess(t *testing.T) {
	cfg := smallConfig()
	cfg.RecoveryPointInterval = time.Nanosecond // a point with every sync
	e := newEnv(t, cfg)
	for range 3 { // each process leaves points in both slots
		e.append(segmenttest.Values(1, "before"))
		e.append(segmenttest.Values(1, "before"))
		e.reopen()
	}
	a := e.append(segmenttest.Values(1, "synced")) // its sync records the point past it
	data, _ := e.fs.ReadFile(firstSegment)
	pos := bytes.Index(data, []byte("synced"))
	data[pos] ^= 0xff
	after := e.fs.Crash(nil)
	after.WriteFile(firstSegment, data)
	st, err := segment.OpenStore("/data", segment.StoreOptions{FS: after, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.Open("orders", 0, cfg)
	if !errors.Is(err, segment.ErrCorrupt) {
		end := int64(-1)
		if l != nil {
			end = l.EndOffset()
		}
		t.Fatalf("open after damage to synced batch %d: %v (end %d), want ErrCorrupt", a.Base, err, end)
	}
}

// TestTornTailFoundPastAHole: on the real file system, a byte written far
// past the log's end, beyond blocks allocated and never written, is found
// and zeroed when the stop was not clean.
func TestTornTailFoundPastAHole(t *testing.T) {
	dir := t.TempDir()
	cfg := segment.DefaultConfig()
	open := func() (*segment.Store, *segment.Log) {
		st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.Open("orders", 0, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st, l
	}
	st, l := open()
	a, err := l.Append(segmenttest.Values(1, "kept"), 7, 1)
	if err == nil {
		err = a.Wait()
	}
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Remove(filepath.Join(dir, "clean-shutdown")); err != nil {
		t.Fatal(err) // the stop is now unclean
	}
	seg := filepath.Join(dir, "orders-0", "00000000000000000000.log")
	info, err := os.Stat(seg)
	if err != nil || info.Size() < 64<<10 {
		t.Fatalf("segment %v, %v", info, err)
	}
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	far := info.Size() - 10
	if _, err := f.WriteAt([]byte{0xff}, far); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, l = open()
	defer st.Close()
	if l.EndOffset() != 1 {
		t.Fatalf("end %d, want 1", l.EndOffset())
	}
	b := make([]byte, 1)
	f, _ = os.Open(seg)
	defer f.Close()
	if _, err := f.ReadAt(b, far); err != nil || b[0] != 0 {
		t.Fatalf("the byte past a hole was not zeroed: %x, %v", b, err)
	}
}

// TestFullDiskWarnsOnce: a disk that cannot take the next allocation step
// is logged once, not for every append that asks again.
func TestFullDiskWarnsOnce(t *testing.T) {
	fs := segmenttest.NewMemFS()
	var out syncBuf
	st, err := segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1,
		Logger: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := smallConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 64<<20, 1<<20
	l, err := st.Open("orders", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs.SetCapacity(fs.Allocated() + 256<<10)
	for range 150 {
		a, err := l.Append(segmenttest.Sized(1, 1000), 0, 1)
		if err == nil {
			err = a.Wait()
		}
		if err != nil {
			break
		}
		time.Sleep(200 * time.Microsecond) // room for the allocation ahead to run, and fail
	}
	if n := strings.Count(out.String(), "cannot allocate ahead"); n > 1 {
		t.Fatalf("%d warnings of a failed allocation, want at most 1:\n%s", n, out.String())
	}
}

// syncBuf is a log destination safe for the store's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
