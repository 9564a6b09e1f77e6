package segment_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
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
