package segment_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

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
