package segment_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// spareNames lists the spare directories in dir.
func spareNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "spare~") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSparesBecomeNewPartitions: a store keeping spares removes those an
// earlier process left, makes its own, and opens a new partition by
// renaming one into place, with the files its user asked for; the
// partition then behaves as one made on its way (written, reopened
// without spares, read back), and the spare is replaced.
func TestSparesBecomeNewPartitions(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, "spare~7")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "00000000000000000000.log"), []byte("half made"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1, Spares: 2, SpareFiles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("the earlier process's spare is still there: %v", err)
	}
	waitSparesReady(t, st, 2)
	before := spareNames(t, dir)

	cfg := segment.DefaultConfig()
	cfg.RetentionMs = -1
	l, err := st.OpenWithSpare("orders", 3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gone := 0
	for _, name := range before {
		if _, err := os.Stat(filepath.Join(dir, name)); os.IsNotExist(err) {
			gone++
		}
	}
	if gone != 1 {
		t.Fatalf("%d of the spares %v taken by the open, want 1", gone, before)
	}
	if fi, err := os.Stat(filepath.Join(dir, "orders-3", "owner")); err != nil || fi.Size() != 0 {
		t.Fatalf("the new partition's owner file: %v, %v", fi, err)
	}
	batch := segmenttest.Sized(1, 300)
	a, err := l.Append(batch, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	waitSparesReady(t, st, 2)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if left := spareNames(t, dir); len(left) != 0 {
		t.Fatalf("a store without spares kept %v", left)
	}
	l, err = st.Open("orders", 3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 0 || l.EndOffset() != 1 {
		t.Fatalf("reopened: offsets %d-%d, want 0-1", l.StartOffset(), l.EndOffset())
	}
	got, err := l.Read(0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[16:], batch[16:]) { // base offset and leader epoch set on append
		t.Fatalf("read back %d bytes, not the batch appended", len(got))
	}
}

// TestSpareNotTakenForAnExistingPartition: a partition already on disk
// opens in place, and a new one opened with Open (the store's own, such
// as the metadata log) is made as without spares; the spares stay.
func TestSpareNotTakenForAnExistingPartition(t *testing.T) {
	dir := t.TempDir()
	cfg := segment.DefaultConfig()
	cfg.RetentionMs = -1
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open("kept", 0, cfg); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1, Spares: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitSparesReady(t, st, 1)
	spare := spareNames(t, dir)
	if _, err := st.OpenWithSpare("kept", 0, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open("own", 0, cfg); err != nil {
		t.Fatal(err)
	}
	if now := spareNames(t, dir); len(now) != 1 || now[0] != spare[0] {
		t.Fatalf("spares %v after opening an existing partition and an own one, want %v", now, spare)
	}
}

// TestSparesFallBack: a spare that cannot be made (a failed write) or
// renamed into place (a directory of that name appeared since the store
// listed the data directory, and holds a file) is dropped with a warning,
// and the partition is made as without spares.
func TestSparesFallBack(t *testing.T) {
	for _, tc := range []struct {
		name, warning string
		failWrites    int
	}{
		{"cannot make", "cannot prepare a spare", 1},
		{"cannot rename", "cannot use a spare", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := segmenttest.NewMemFS()
			fsys.FailWrites(tc.failWrites)
			var out syncBuf
			st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fsys, RetentionCheckInterval: -1, Spares: 1,
				Logger: slog.New(slog.NewTextHandler(&out, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			deadline := time.Now().Add(10 * time.Second)
			for ready := func() bool {
				return st.SparesReady() == 1 || strings.Contains(out.String(), tc.warning)
			}; !ready(); {
				if time.Now().After(deadline) {
					t.Fatalf("no spare and no warning:\n%s", out.String())
				}
				time.Sleep(time.Millisecond)
			}
			if tc.failWrites == 0 {
				if err := fsys.MkdirAll("/d/t-0", 0o755); err != nil {
					t.Fatal(err)
				}
				fsys.WriteFile("/d/t-0/left", []byte("x"))
			}
			l, err := st.OpenWithSpare("t", 0, smallConfig())
			if err != nil {
				t.Fatal(err)
			}
			a, err := l.Append(segmenttest.Sized(1, 200), 0, -1)
			if err == nil {
				err = a.Wait()
			}
			if err != nil || l.EndOffset() != 1 {
				t.Fatalf("append to the partition made without a spare: %v, end %d", err, l.EndOffset())
			}
			if !strings.Contains(out.String(), tc.warning) {
				t.Fatalf("no warning %q:\n%s", tc.warning, out.String())
			}
			if names, _ := fsys.ReadDir("/d"); slices.Contains(names, "spare~1") {
				t.Fatalf("the spare that failed is still there: %v", names)
			}
		})
	}
}
