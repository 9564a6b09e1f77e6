package segmenttest

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
)

// TestDirectoryRenameIsDurableWithItsParent: a renamed directory keeps
// its synced files under its new name once the parent is synced; a crash
// before that brings back the old name, with the files that were synced
// and none made since.
func TestDirectoryRenameIsDurableWithItsParent(t *testing.T) {
	setup := func(t *testing.T) *MemFS {
		m := NewMemFS()
		if err := m.MkdirAll("/d/spare", 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := m.OpenFile("/d/spare/seg", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("zeros"), 0)
		f.Sync()
		f.Close()
		m.SyncDir("/d/spare")
		if err := m.Rename("/d/spare", "/d/p-0"); err != nil {
			t.Fatal(err)
		}
		late, err := m.OpenFile("/d/p-0/late", os.O_RDWR|os.O_CREATE, 0o644) // its entry never synced
		if err != nil {
			t.Fatal(err)
		}
		late.Close()
		return m
	}
	list := func(t *testing.T, m *MemFS, dir string) []string {
		names, err := m.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		return names
	}

	m := setup(t)
	if got := list(t, m, "/d"); !slices.Equal(got, []string{"p-0"}) {
		t.Fatalf("/d before the crash: %v", got)
	}
	after := m.Crash(nil)
	if got := list(t, after, "/d"); !slices.Equal(got, []string{"spare"}) {
		t.Fatalf("/d after a crash before the parent's sync: %v, want the old name", got)
	}
	if got := list(t, after, "/d/spare"); !slices.Equal(got, []string{"seg"}) {
		t.Fatalf("the directory under its old name: %v, want the synced file only", got)
	}

	m = setup(t)
	m.SyncDir("/d")
	after = m.Crash(nil)
	if got := list(t, after, "/d"); !slices.Equal(got, []string{"p-0"}) {
		t.Fatalf("/d after a crash after the parent's sync: %v", got)
	}
	if data, err := after.ReadFile("/d/p-0/seg"); err != nil || string(data) != "zeros" {
		t.Fatalf("the synced file under the new name: %q, %v", data, err)
	}

	m = setup(t)
	m.MkdirAll("/d/q", 0o755)
	m.WriteFile("/d/q/x", nil)
	if err := m.Rename("/d/p-0", "/d/q"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rename onto a directory with a file: %v, want ENOTEMPTY", err)
	}
}
