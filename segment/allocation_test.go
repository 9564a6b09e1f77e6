package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

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

// TestFullDiskWarnsOnce: a disk that cannot take the next allocation step
// is logged once, not for every append that asks again.
func TestFullDiskWarnsOnce(t *testing.T) {
	_, _, l, out := nearlyFullDisk(t)
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

// nearlyFullDisk opens a log of 1 MiB allocation steps on a disk with
// 256 KiB left, logging into out.
func nearlyFullDisk(t *testing.T) (*segmenttest.MemFS, *segment.Store, *segment.Log, *syncBuf) {
	t.Helper()
	fs := segmenttest.NewMemFS()
	out := &syncBuf{}
	st, err := segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1,
		Logger: slog.New(slog.NewTextHandler(out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := smallConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 64<<20, 1<<20
	l, err := st.Open("orders", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs.SetCapacity(fs.Allocated() + 256<<10)
	return fs, st, l, out
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

// TestFailedAppendsAreLogged: appends that a full disk refuses are logged
// as errors, the first of a run and not every one, and the first append
// that succeeds again says how many failed.
func TestFailedAppendsAreLogged(t *testing.T) {
	fs, st, l, out := nearlyFullDisk(t)
	appendOne := func() error {
		a, err := l.Append(segmenttest.Sized(1, 1000), 0, 1)
		if err == nil {
			err = a.Wait()
		}
		return err
	}
	failed := 0
	for range 400 {
		if err := appendOne(); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append on a full disk: %v, want ENOSPC", err)
			}
			failed++
		}
	}
	if failed < 2 {
		t.Fatalf("%d appends of 400 failed on a disk of 256 KiB", failed)
	}
	if n := strings.Count(out.String(), "cannot append"); n != 1 || !strings.Contains(out.String(), "level=ERROR msg=\"cannot append") || !strings.Contains(out.String(), "failed_appends=1 ") {
		t.Fatalf("%d failed appends logged %d times, want once, as an error:\n%s", failed, n, out.String())
	}
	if st.Stats().FailedAppends != int64(failed) {
		t.Fatalf("Stats counts %d failed appends, want %d", st.Stats().FailedAppends, failed)
	}
	if strings.Contains(out.String(), "appending again") {
		t.Fatalf("appending again before any append succeeded:\n%s", out.String())
	}
	fs.SetCapacity(fs.Allocated() + 64<<20)
	if err := appendOne(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("level=INFO msg=\"appending again\" partition=orders-0 file=/data/orders-0/00000000000000000000.log failed_appends=%d\n", failed)) {
		t.Fatalf("the append after %d failures:\n%s", failed, out.String())
	}
	// Flapping within appendFailLogEvery adds no lines.
	fs.SetCapacity(fs.Allocated())
	for i := 0; ; i++ { // what was allocated ahead takes a few first
		_, err := l.Append(segmenttest.Sized(1, 1000<<10), 0, 1)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil || i == 10 {
			t.Fatalf("append %d of 1000 KiB on a full disk: %v", i, err)
		}
	}
	fs.SetCapacity(fs.Allocated() + 64<<20)
	if err := appendOne(); err != nil {
		t.Fatal(err)
	}
	if a, b := strings.Count(out.String(), "cannot append"), strings.Count(out.String(), "appending again"); a != 1 || b != 1 {
		t.Fatalf("a flap logged again (%d and %d lines, want 1 and 1):\n%s", a, b, out.String())
	}
}

// TestAppendKeepingLeavesRoom: AppendKeeping fails on a disk that cannot
// hold its batch and the room after it, where Append then takes the room;
// the room asked for stops at the segment's end.
func TestAppendKeepingLeavesRoom(t *testing.T) {
	fs, st, l, _ := nearlyFullDisk(t)
	const keep = 64 << 10
	var err error
	n := 0
	for ; n < 1000 && err == nil; n++ {
		var a *segment.Appended
		if a, err = l.AppendKeeping(segmenttest.Sized(1, 1000), 0, 1, keep); err == nil {
			err = a.Wait()
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || n < 2 {
		t.Fatalf("after %d appends keeping 64 KiB on a disk of 256 KiB: %v, want ENOSPC", n, err)
	}
	plain := 0
	for ; plain < 1000; plain++ {
		a, err := l.Append(segmenttest.Sized(1, 1000), 0, 1)
		if err == nil {
			err = a.Wait()
		}
		if err != nil {
			break
		}
	}
	if plain*1000 < keep*9/10 {
		t.Fatalf("%d appends of 1000 bytes took the room kept, want about %d", plain, keep/1000)
	}
	// Near the segment's end, only the room up to it is asked for.
	fs.SetCapacity(fs.Allocated() + 64<<20)
	cfg := smallConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 64<<10, 64<<10
	short, err := st.Open("short", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Append(segmenttest.Sized(1, 1000), 0, 1); err != nil {
		t.Fatal(err)
	}
	fs.SetCapacity(fs.Allocated())
	for i := range 60 {
		if _, err := short.AppendKeeping(segmenttest.Sized(1, 1000), 0, 1, 1<<20); err != nil {
			t.Fatalf("append %d of 1000 bytes into a segment of 64 KiB allocated whole: %v", i, err)
		}
	}
}

// TestOpenOnAFullDisk: a log recovered after a crash opens on a disk with
// no room to record its recovery point (a node must start on a full disk,
// to serve and to free space), keeps what was synced and takes appends
// once there is room again.
func TestOpenOnAFullDisk(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(3, "kept"))
	e.append(segmenttest.Values(2, "kept too"))
	end := e.log.EndOffset()
	e.fs = e.fs.Crash(nil)
	e.fs.SetCapacity(e.fs.Allocated())
	e.open()
	if e.log.EndOffset() != end {
		t.Fatalf("end %d after the crash, want %d", e.log.EndOffset(), end)
	}
	if b := e.readAll(0); len(b) != 2 {
		t.Fatalf("%d batches read, want 2", len(b))
	}
	e.fs.SetCapacity(e.fs.Allocated() + 1<<20)
	e.append(segmenttest.Values(1, "after"))
}
