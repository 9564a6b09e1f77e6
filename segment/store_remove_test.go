package segment_test

import (
	"errors"
	"io/fs"
	"sync/atomic"
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// listingFS counts directory listings.
type listingFS struct {
	*segmenttest.MemFS
	listed atomic.Int64
}

func (f *listingFS) ReadDir(dir string) ([]string, error) {
	f.listed.Add(1)
	return f.MemFS.ReadDir(dir)
}

// TestRemoveKnowsWhatIsOnDisk: Remove deletes a partition directory left
// from before the store opened and one the store made, and does not look
// on disk for a partition that was never there (every topic creation
// removes what a deleted topic of the same name may have left).
func TestRemoveKnowsWhatIsOnDisk(t *testing.T) {
	mem := segmenttest.NewMemFS()
	st, err := segment.OpenStore("/d", segment.StoreOptions{FS: mem, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Open("old", 0, smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(segmenttest.Sized(1, 100), 0, -1); err != nil {
		t.Fatal(err)
	}
	st.Close()

	fsys := &listingFS{MemFS: mem}
	st, err = segment.OpenStore("/d", segment.StoreOptions{FS: fsys, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gone := func(name string) {
		t.Helper()
		if _, err := mem.ReadDir("/d/" + name); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s is still on disk (%v)", name, err)
		}
	}
	remove := func(topic string) {
		t.Helper()
		if err := st.Remove(topic, 0); err != nil {
			t.Fatal(err)
		}
	}
	unlisted := func(topic, what string) { // removed without a listing
		t.Helper()
		before := fsys.listed.Load()
		remove(topic)
		if n := fsys.listed.Load() - before; n != 0 {
			t.Fatalf("removing %s listed %d directories", what, n)
		}
	}
	open := func(topic string) {
		t.Helper()
		if _, err := st.Open(topic, 0, smallConfig()); err != nil {
			t.Fatal(err)
		}
	}
	remove("old")
	gone("old-0")
	unlisted("never", "a partition never on disk")

	open("new")
	remove("new")
	gone("new-0")
	unlisted("new", "a removed partition again")
	// Made again after its removal, it is removed again.
	open("new")
	remove("new")
	gone("new-0")
}
