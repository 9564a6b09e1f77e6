package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func TestStorageKeepsWhatWasSaved(t *testing.T) {
	dir := t.TempDir()
	s, st, err := OpenStorage(nil, dir, nil)
	if err != nil || st.HardState != (HardState{}) || st.Snapshot != nil || len(st.Entries) != 0 {
		t.Fatalf("new storage: %+v %v", st, err)
	}
	ents := func(term uint64, from, to uint64) []Entry {
		var out []Entry
		for i := from; i <= to; i++ {
			out = append(out, Entry{Term: term, Index: i, Data: []byte{byte(i)}})
		}
		return out
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Save(&HardState{Term: 1, Vote: 2}, nil, ents(1, 1, 5)))
	must(s.Save(&HardState{Term: 2, Vote: 3, Commit: 3}, nil, ents(2, 4, 6))) // replaces 4 and 5
	before := s.size
	must(s.Compact(&Snapshot{Index: 2, Term: 1, Data: []byte("s")}))
	if s.size >= before {
		t.Fatalf("compaction left the file at %d bytes (was %d): the entries it replaced stay", s.size, before)
	}
	must(s.Close())

	want := Restored{HardState: HardState{Term: 2, Vote: 3, Commit: 3}, Snapshot: &Snapshot{Index: 2, Term: 1, Data: []byte("s")},
		Entries: append(ents(1, 3, 3), ents(2, 4, 6)...)}
	s, st, err = OpenStorage(nil, dir, nil)
	if err != nil || !reflect.DeepEqual(st, want) {
		t.Fatalf("reopened: %+v %v, want %+v", st, err, want)
	}

	// A torn last record is cut off; what came before stays.
	must(s.Save(&HardState{Term: 3}, nil, nil))
	end := s.size // the file goes on with the zeros allocated ahead
	s.Close()
	path := filepath.Join(dir, StorageFile)
	os.Truncate(path, end-3)
	s, st, err = OpenStorage(nil, dir, nil)
	if err != nil || !reflect.DeepEqual(st, want) {
		t.Fatalf("after a torn tail: %+v %v, want %+v", st, err, want)
	}

	// Rewriting keeps the state and shrinks the file.
	s.compactAt = 1
	must(s.Save(&HardState{Term: 4, Commit: 5}, nil, nil))
	s.Close()
	want.HardState = HardState{Term: 4, Commit: 5}
	s, st, err = OpenStorage(nil, dir, nil)
	if err != nil || !reflect.DeepEqual(st, want) {
		t.Fatalf("after a rewrite: %+v %v, want %+v", st, err, want)
	}
	s.Close()
}

// TestStorageRecordsStayWithinTheBound: entries larger together than a
// record goes in as many records as they need, when saved and when the
// file is rewritten, and all of them (and the hard state after them) are
// there after a restart; a snapshot or an entry too large for a record is
// refused, not written where a restart would read it as a torn tail.
func TestStorageRecordsStayWithinTheBound(t *testing.T) {
	defer func(n int) { maxRecordBytes = n }(maxRecordBytes)
	maxRecordBytes = 1 << 10
	dir := t.TempDir()
	s, _, err := OpenStorage(nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ents []Entry
	for i := uint64(1); i <= 20; i++ {
		ents = append(ents, Entry{Term: 1, Index: i, Data: make([]byte, 200)})
	}
	if err := s.Save(&HardState{Term: 1, Vote: 1, Commit: 10}, nil, ents[:10]); err != nil {
		t.Fatal(err)
	}
	s.compactAt = 1 // the next save rewrites the file: all 20 entries
	if err := s.Save(&HardState{Term: 1, Vote: 1, Commit: 20}, nil, ents[10:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(nil, nil, []Entry{{Term: 1, Index: 21, Data: make([]byte, 2<<10)}}); err == nil {
		t.Fatal("saved an entry larger than a record")
	}
	if err := s.Compact(&Snapshot{Index: 20, Term: 1, Data: make([]byte, 2<<10)}); err == nil {
		t.Fatal("saved a snapshot larger than a record")
	}
	s.Close()
	s, st, err := OpenStorage(nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st.HardState.Commit != 20 || len(st.Entries) != 20 || st.Snapshot != nil {
		t.Fatalf("after a restart: commit %d, %d entries, snapshot %v; want 20, 20, none", st.HardState.Commit, len(st.Entries), st.Snapshot)
	}
}

func FuzzStorageReplay(f *testing.F) {
	var b []byte
	b = appendRecord(b, hardStateRecord(HardState{Term: 1, Vote: 1, Commit: 1}))
	b = appendRecord(b, entriesRecord([]Entry{{Term: 1, Index: 1, Data: []byte("a")}}))
	b = appendRecord(b, snapshotRecord(&Snapshot{Index: 1, Term: 1}))
	f.Add(b)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Storage{}
		n, _ := s.replay(data)
		if n > len(data) {
			t.Fatalf("replay claims %d of %d bytes", n, len(data))
		}
		// Whatever was accepted is a valid state: entries contiguous after
		// the snapshot.
		for i, e := range s.state.Entries {
			if e.Index != s.firstIndex()+uint64(i) {
				t.Fatalf("entry %d has index %d after first index %d", i, e.Index, s.firstIndex())
			}
		}
	})
}

// TestSnapshotRecordBoundIsExact: Compact and Save take a snapshot whose
// record is exactly maxRecordBytes and refuse one a byte larger.
func TestSnapshotRecordBoundIsExact(t *testing.T) {
	defer func(n int) { maxRecordBytes = n }(maxRecordBytes)
	maxRecordBytes = 1 << 10
	fits := 1<<10 - 1 - 16 - 2 // the record's kind, index, term and a 2-byte length
	s, _, err := OpenStorage(nil, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Compact(&Snapshot{Index: 1, Term: 1, Data: make([]byte, fits)}); err != nil {
		t.Fatalf("compact with a record of exactly the bound: %v", err)
	}
	if err := s.Save(nil, &Snapshot{Index: 2, Term: 1, Data: make([]byte, fits)}, nil); err != nil {
		t.Fatalf("save with a record of exactly the bound: %v", err)
	}
	if s.Compact(&Snapshot{Index: 3, Term: 1, Data: make([]byte, fits+1)}) == nil ||
		s.Save(nil, &Snapshot{Index: 3, Term: 1, Data: make([]byte, fits+1)}, nil) == nil {
		t.Fatal("a snapshot a byte over the bound was taken")
	}
}

// TestStorageSurvivesPowerLoss: what Save and Compact returned from is
// there after a power loss (on the crashable file system: only what was
// synced survives, and a random part of the rest), from the first vote in
// a new file on: a vote lost with its file would be cast again.
func TestStorageSurvivesPowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	fsys := segmenttest.NewMemFS()
	s, _, err := OpenStorage(fsys, "node/raft", nil)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Save(&HardState{Term: 1, Vote: 2}, nil, nil))
	var term uint64 = 1
	for round := range 200 {
		for range rng.IntN(5) {
			last := s.firstIndex() + uint64(len(s.state.Entries)) - 1
			switch rng.IntN(5) {
			case 0:
				term++
				must(s.Save(&HardState{Term: term, Vote: int32(1 + rng.IntN(3)), Commit: s.state.HardState.Commit}, nil, nil))
			case 1, 2: // entries after the last, or replacing a tail
				from := last + 1
				if rng.IntN(3) == 0 && len(s.state.Entries) > 0 {
					from = s.firstIndex() + uint64(rng.IntN(len(s.state.Entries)))
				}
				var ents []Entry
				for i := range uint64(1 + rng.IntN(20)) {
					ents = append(ents, Entry{Term: term, Index: from + i, Data: make([]byte, rng.IntN(3000))})
				}
				must(s.Save(nil, nil, ents))
			case 3:
				if len(s.state.Entries) > 0 {
					e := s.state.Entries[rng.IntN(len(s.state.Entries))]
					must(s.Compact(&Snapshot{Index: e.Index, Term: e.Term, Data: []byte(fmt.Sprint("state at ", e.Index))}))
				}
			case 4: // the next save rewrites the file
				s.compactAt = 1
				must(s.Save(&HardState{Term: term, Commit: last}, nil, nil))
				s.compactAt = 64 << 20
			}
		}
		want := s.state
		if len(want.Entries) == 0 {
			want.Entries = nil
		}
		crashRng := rng
		if round == 0 {
			crashRng = nil // only what was synced: the new file's name too
		}
		fsys = fsys.Crash(crashRng)
		s, _, err = OpenStorage(fsys, "node/raft", nil)
		must(err)
		if got := s.state; !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: after a power loss the storage holds hard state %+v, snapshot %+v, %d entries; want %+v, %+v, %d",
				round, got.HardState, got.Snapshot, len(got.Entries), want.HardState, want.Snapshot, len(want.Entries))
		}
	}
}

// noTransport is a single voter's: it has no one to send to.
type noTransport struct{}

func (noTransport) Send(Message) {}

// TestDriverStopsWhenACompactionCannotBeWritten: a compaction whose file
// cannot be written (here: its sync fails) stops the driver, as a Ready
// that cannot be persisted does; before, the node went on writing to a
// file a restart might not read.
func TestDriverStopsWhenACompactionCannotBeWritten(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	s, restored, err := OpenStorage(fsys, "/raft", nil)
	if err != nil {
		t.Fatal(err)
	}
	var applied atomic.Uint64
	failed := make(chan error, 1)
	d, err := NewDriver(DriverConfig{Node: Config{ID: 1, Voters: []int32{1}}, Tick: time.Millisecond, Storage: s, Restored: restored,
		Transport: noTransport{}, Apply: func(es []Entry) { applied.Store(es[len(es)-1].Index) }, OnFail: func(err error) { failed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for d.Status().Role != Leader {
		if ctx.Err() != nil {
			t.Fatal("a single voter was not elected")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 5 {
		if err := d.Propose(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for applied.Load() < 6 { // the leader's empty entry, then the five
		if ctx.Err() != nil {
			t.Fatalf("applied up to %d", applied.Load())
		}
		time.Sleep(time.Millisecond)
	}
	fsys.FailSyncs(1)
	if err := d.Compact(ctx, 3, []byte("state")); err == nil {
		t.Fatal("a compaction whose file could not be synced succeeded")
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "compact") {
			t.Fatalf("the driver stopped with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the driver went on after a compaction it could not write")
	}
	if err := d.Propose(ctx, []byte("after")); !errors.Is(err, ErrStopped) {
		t.Fatalf("a proposal after the failed compaction: %v", err)
	}
}

// TestStorageForgetsAFailedSave: a sync that fails may lose the record it
// was to make durable while reads still see it (Linux marks the pages
// clean after a failed writeback). The process that restarts after it must
// not read that record as saved (a vote or entries it would go on to
// count on), and what it saves next must survive a power loss, not be
// cut off behind the lost record's zeros as a torn tail.
func TestStorageForgetsAFailedSave(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	fsys.FailedSyncsLoseWrites()
	ents := func(term, from, to uint64) []Entry {
		var out []Entry
		for i := from; i <= to; i++ {
			out = append(out, Entry{Term: term, Index: i, Data: []byte{byte(i)}})
		}
		return out
	}
	open := func(fsys *segmenttest.MemFS, want Restored) *Storage {
		t.Helper()
		s, got, err := OpenStorage(fsys, "node/raft", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("opened: hard state %+v, %d entries; want %+v, %d", got.HardState, len(got.Entries), want.HardState, len(want.Entries))
		}
		return s
	}
	s := open(fsys, Restored{})
	if err := s.Save(&HardState{Term: 1, Vote: 1}, nil, ents(1, 1, 3)); err != nil {
		t.Fatal(err)
	}
	fsys.FailSyncs(1)
	if err := s.Save(&HardState{Term: 2, Vote: 2}, nil, ents(2, 4, 6)); err == nil {
		t.Fatal("a save whose sync failed succeeded")
	}
	if err := s.Save(&HardState{Term: 2, Vote: 2}, nil, nil); err == nil {
		t.Fatal("a save after a failed one succeeded: the storage no longer knows what its file holds")
	}
	s.Close()

	// The process restarts, not the machine.
	s = open(fsys, Restored{HardState: HardState{Term: 1, Vote: 1}, Entries: ents(1, 1, 3)})
	if err := s.Save(&HardState{Term: 3, Vote: 3}, nil, ents(3, 4, 5)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(fsys.Crash(nil), Restored{HardState: HardState{Term: 3, Vote: 3}, Entries: append(ents(1, 1, 3), ents(3, 4, 5)...)})
	s.Close()
}

// TestStorageKeepsRoomAhead: the file is allocated ahead of its records,
// so that votes and terms are saved on a disk that filled up meanwhile;
// the zeros ahead are not taken for a torn tail when the file is opened
// again, while a torn record before them still is.
func TestStorageKeepsRoomAhead(t *testing.T) {
	fs := segmenttest.NewMemFS()
	var out bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&out, nil))
	s, _, err := OpenStorage(fs, "/r", lg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&HardState{Term: 1}, nil, nil); err != nil {
		t.Fatal(err)
	}
	fs.SetCapacity(fs.Allocated()) // full
	for term := uint64(2); term < 300; term++ {
		if err := s.Save(&HardState{Term: term, Vote: 2}, nil, nil); err != nil {
			t.Fatalf("term %d on a full disk: %v", term, err)
		}
	}
	end := s.size
	s.Close()
	s, st, err := OpenStorage(fs, "/r", lg)
	if err != nil || st.HardState != (HardState{Term: 299, Vote: 2}) {
		t.Fatalf("reopened: %+v, %v", st.HardState, err)
	}
	if strings.Contains(out.String(), "torn") {
		t.Fatalf("the room ahead taken for a torn tail:\n%s", out.String())
	}
	s.Close()
	// A record torn in the room ahead: cut off, the one before it kept.
	f, err := fs.OpenFile("/r/"+StorageFile, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0, 0, 0, 40, 1, 2}, end)
	f.Close()
	if _, st, err = OpenStorage(fs, "/r", lg); err != nil || st.HardState.Term != 299 || !strings.Contains(out.String(), "torn") {
		t.Fatalf("after a torn record: %+v, %v\n%s", st.HardState, err, out.String())
	}
}
