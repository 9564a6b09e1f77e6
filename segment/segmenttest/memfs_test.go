package segmenttest

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/chronik-stream/chronik/segment"
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

// TestAFailedSyncIsReportedToEveryHandle: a failed sync is reported once
// to each handle open on the file, whichever handle's sync failed; with
// FailedSyncsLoseWrites what it did not make durable stays readable, no
// later sync writes it, and a crash loses it.
func TestAFailedSyncIsReportedToEveryHandle(t *testing.T) {
	m := NewMemFS()
	m.FailedSyncsLoseWrites()
	open := func() segment.File {
		f, err := m.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	m.SyncDir("/")
	a.WriteAt([]byte("durable "), 0)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	a.WriteAt([]byte("lost"), 8)
	m.FailSyncs(1)
	if err := b.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("the failing sync: %v", err)
	}
	if err := a.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("the other handle's next sync: %v, want the failure reported", err)
	}
	for name, f := range map[string]segment.File{"a": a, "b": b} {
		if err := f.Sync(); err != nil {
			t.Fatalf("handle %s reported the failure twice: %v", name, err)
		}
	}
	c := open() // opened after the failure: not told of it
	if err := c.Sync(); err != nil {
		t.Fatalf("a handle opened after the failure: %v", err)
	}
	if got, _ := m.ReadFile("/f"); string(got) != "durable lost" {
		t.Fatalf("reads see %q", got)
	}
	if got, _ := m.Crash(nil).ReadFile("/f"); string(got) != "durable \x00\x00\x00\x00" {
		t.Fatalf("after a crash %q, want the lost write as zeros", got)
	}
}
