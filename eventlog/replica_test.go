package eventlog

import (
	"bytes"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
)

// shipped is a batch as the controller ships it: its bytes and the epoch
// of the batch before it.
type shipped struct {
	batch     []byte
	prevEpoch int32
}

// batchesFrom reads the controller's batches from offset on.
func batchesFrom(t *testing.T, l *Log, from int64) []shipped {
	t.Helper()
	var out []shipped
	prev := int32(-1)
	l.wmu.Lock()
	prev = l.epochBeforeLocked(from)
	l.wmu.Unlock()
	for off := from; off < l.Segment().HighWatermark(); {
		b, err := l.Segment().Read(off, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := segment.ParseHeader(b)
		out = append(out, shipped{b[:h.Size()], prev})
		prev = h.PartitionLeaderEpoch
		off = h.LastOffset() + 1
	}
	return out
}

// leadingLog is a replicated log whose node is the controller of epoch.
func leadingLog(t *testing.T, epoch int32) *logEnv {
	t.Helper()
	e := newLogEnv(t, Options{Replicated: true})
	e.log.Lead(epoch)
	return e
}

func ship(t *testing.T, to *Log, bs []shipped) {
	t.Helper()
	for _, s := range bs {
		a, err := to.AppendShipped(s.batch, s.prevEpoch)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.WaitShipped(a); err != nil {
			t.Fatal(err)
		}
	}
}

func topicNames(l *Log) []string {
	var out []string
	l.View(func(s *State) {
		for name := range s.Topics {
			out = append(out, name)
		}
	})
	sort.Strings(out)
	return out
}

func TestShippedBatchesApplyOnCommit(t *testing.T) {
	ctrl := leadingLog(t, 1)
	fol := newLogEnv(t, Options{Replicated: true})
	ctrl.append(reg(1, inc1)) // offset 0
	ctrl.append(createTopic("a", 1)...)
	ctrl.append(createTopic("b", 2)...)
	if got := topicNames(ctrl.log); len(got) != 0 {
		t.Fatalf("the controller's readers see %v before any commit", got)
	}
	bs := batchesFrom(t, ctrl.log, 0)
	ship(t, fol.log, bs)
	if end, epoch := fol.log.End(); end != 6 || epoch != 1 {
		t.Fatalf("follower end %d epoch %d, want 6 and 1", end, epoch)
	}
	if got := topicNames(fol.log); len(got) != 0 {
		t.Fatalf("the follower's readers see %v before the commit", got)
	}
	// The first two batches are committed, then all.
	if err := fol.log.Commit(3); err != nil {
		t.Fatal(err)
	}
	if got := topicNames(fol.log); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after committing the first batch: %v", got)
	}
	for _, l := range []*Log{ctrl.log, fol.log} {
		if err := l.Commit(6); err != nil {
			t.Fatal(err)
		}
	}
	if ctrl.snapshotBytes() != fol.snapshotBytes() {
		t.Fatal("controller and follower states differ after the same commits")
	}
}

func TestShippedBatchMustContinueTheLog(t *testing.T) {
	ctrl := leadingLog(t, 3)
	fol := newLogEnv(t, Options{Replicated: true})
	ctrl.append(reg(1, inc1))
	ctrl.append(createTopic("b", 1)...)
	bs := batchesFrom(t, ctrl.log, 0)
	if _, err := fol.log.AppendShipped(bs[1].batch, bs[1].prevEpoch); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("a batch after a gap: %v", err)
	}
	if _, err := fol.log.AppendShipped(bs[0].batch, 2); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("a batch after another epoch: %v", err)
	}
	ship(t, fol.log, bs)
	if _, err := fol.log.AppendShipped(bs[1].batch, bs[1].prevEpoch); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("a batch shipped twice: %v", err)
	}
	single := newLogEnv(t, Options{})
	if _, err := single.log.AppendShipped(bs[0].batch, -1); err == nil {
		t.Fatal("a log that is not replicated took a shipped batch")
	}
}

// TestFailedSyncOfShippedBatchFailsTheLog: when a follower cannot sync a
// shipped batch, its log fails (the node then leaves the quorum and
// starts again from its disk), rather than taking the batch's events into
// its state while the segment drops the batch, after which the same batch
// shipped again was refused as not applying, for good.
func TestFailedSyncOfShippedBatchFailsTheLog(t *testing.T) {
	ctrl := leadingLog(t, 1)
	fol := newLogEnv(t, Options{Replicated: true})
	ctrl.append(reg(1, inc1))
	ctrl.append(createTopic("a", 1)...)
	bs := batchesFrom(t, ctrl.log, 0)
	ship(t, fol.log, bs[:1])
	fol.fs.FailSyncs(1)
	a, err := fol.log.AppendShipped(bs[1].batch, bs[1].prevEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := fol.log.WaitShipped(a); !errors.Is(err, ErrFailed) {
		t.Fatalf("a shipped batch whose sync failed: %v, want ErrFailed", err)
	}
	if err := fol.log.Failed(); !errors.Is(err, ErrFailed) {
		t.Fatalf("the log after a failed sync: %v", err)
	}
	if _, err := fol.log.AppendShipped(bs[1].batch, bs[1].prevEpoch); !errors.Is(err, ErrFailed) {
		t.Fatalf("the batch shipped again: %v, want ErrFailed", err)
	}
	// Reopened, the log holds what was durable and takes the batch again.
	fol.close()
	fol.open()
	ship(t, fol.log, bs[1:])
	if err := fol.log.Commit(3); err != nil {
		t.Fatal(err)
	}
	if got := topicNames(fol.log); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after the restart and the batch shipped again: %v", got)
	}
}

// TestDivergingTailIsTruncated: a follower holds a batch of epoch 1 the
// old controller never got committed; the new controller (epoch 2) does not
// have it. The follower asks where epoch 1 ends on the new controller,
// truncates there, and takes the new controller's batches.
func TestDivergingTailIsTruncated(t *testing.T) {
	old := leadingLog(t, 1)
	fol := newLogEnv(t, Options{Replicated: true})
	next := newLogEnv(t, Options{Replicated: true})
	old.append(reg(1, inc1))
	old.append(createTopic("committed", 1)...)
	common := batchesFrom(t, old.log, 0)
	ship(t, fol.log, common)
	ship(t, next.log, common)
	for _, l := range []*Log{fol.log, next.log} {
		if err := l.Commit(3); err != nil {
			t.Fatal(err)
		}
	}
	old.append(createTopic("lost", 1)...) // reaches the follower only
	ship(t, fol.log, batchesFrom(t, old.log, 3))

	next.log.Lead(2)
	if _, err := next.log.Append(createTopic("kept", 3)...); err != nil {
		t.Fatal(err)
	}
	_, lastEpoch := fol.log.End()
	cut := next.log.EpochEnd(lastEpoch)
	if cut != 3 {
		t.Fatalf("epoch 1 ends at %d on the new controller, want 3", cut)
	}
	if err := fol.log.TruncateTo(1); !errors.Is(err, ErrCommitted) {
		t.Fatalf("truncating committed events: %v", err)
	}
	if err := fol.log.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	ship(t, fol.log, batchesFrom(t, next.log, cut))
	for _, l := range []*Log{fol.log, next.log} {
		if err := l.Commit(7); err != nil {
			t.Fatal(err)
		}
	}
	if got := topicNames(fol.log); len(got) != 2 || got[0] != "committed" || got[1] != "kept" {
		t.Fatalf("follower topics %v, want [committed kept]", got)
	}
	if fol.snapshotBytes() != next.snapshotBytes() {
		t.Fatal("follower and new controller differ")
	}
	// The follower restarts: its tail is durable, its readers wait for a
	// commit, then see the same state.
	fol.reopen()
	if end, epoch := fol.log.End(); end != 7 || epoch != 2 {
		t.Fatalf("after reopening: end %d epoch %d", end, epoch)
	}
	if got := topicNames(fol.log); len(got) != 0 {
		t.Fatalf("after reopening, before a commit, readers see %v", got)
	}
	if err := fol.log.Commit(7); err != nil {
		t.Fatal(err)
	}
	if fol.snapshotBytes() != next.snapshotBytes() {
		t.Fatal("follower differs after reopening and committing")
	}
}

// TestWaitApplied: a wait for an offset ends when a commit applies it, or
// at its timeout when none does.
func TestWaitApplied(t *testing.T) {
	ctrl := leadingLog(t, 1)
	fol := newLogEnv(t, Options{Replicated: true})
	ctrl.append(reg(1, inc1))
	ctrl.append(createTopic("a", 1)...)
	ship(t, fol.log, batchesFrom(t, ctrl.log, 0))
	end, _ := fol.log.End()
	if fol.log.WaitApplied(end, 10*time.Millisecond) {
		t.Fatal("applied before any commit")
	}
	if !fol.log.WaitApplied(0, 0) {
		t.Fatal("offset 0 is not applied at once")
	}
	done := make(chan bool)
	go func() { done <- fol.log.WaitApplied(end, 10*time.Second) }()
	time.Sleep(10 * time.Millisecond)
	if err := fol.log.Commit(1); err != nil { // the first batch only
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("the wait ended before its offset was applied")
	case <-time.After(10 * time.Millisecond):
	}
	if err := fol.log.Commit(end); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Fatal("the wait timed out though its offset was applied")
	}
}

// TestAppendsOnlyWhileLeading: a replicated log takes appends only between
// Lead and Follow. A change accepted before Follow but not yet written is
// refused and leaves nothing behind; one written before stays.
func TestAppendsOnlyWhileLeading(t *testing.T) {
	e := newLogEnv(t, Options{Replicated: true})
	if _, err := e.log.Append(reg(1, inc1)); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("an append before Lead: %v", err)
	}
	e.log.Lead(1)
	if _, err := e.log.Append(reg(1, inc1)); err != nil {
		t.Fatal(err)
	}

	// One change is written and syncing, the next waits for it.
	release := e.fs.HoldSyncs()
	written, queued := make(chan error, 1), make(chan error, 1)
	go func() { _, err := e.log.Append(createTopic("written", 1)...); written <- err }()
	waitLog(t, e.log, func() bool { return e.log.seg.EndOffset() == 3 })
	go func() { _, err := e.log.Append(createTopic("queued", 1)...); queued <- err }()
	waitLog(t, e.log, func() bool { return len(e.log.queue) == 1 })
	e.log.Follow()
	release()
	if err := <-written; err != nil {
		t.Fatalf("the change written before Follow: %v", err)
	}
	if err := <-queued; !errors.Is(err, ErrNotLeading) {
		t.Fatalf("the change queued at Follow: %v", err)
	}
	if _, err := e.log.Append(createTopic("later", 1)...); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("an append after Follow: %v", err)
	}
	if end, _ := e.log.End(); end != 3 {
		t.Fatalf("the log ends at %d, want 3 (the written change)", end)
	}
	// The refused change left nothing in what appends are checked against.
	e.log.Lead(2)
	if _, err := e.log.Append(createTopic("queued", 1)...); err != nil {
		t.Fatalf("the refused change, appended again: %v", err)
	}
}

// waitLog waits until cond holds, checked under the log's write lock.
func waitLog(t *testing.T, l *Log, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.wmu.Lock()
		ok := cond()
		l.wmu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestUncommittedTailLeavesTheStateAlone: the durable tail a replicated
// log replays at open, and what is left of it after a truncation, go into
// what appends are checked against, not into what readers see: a
// partition's leader changed by an uncommitted batch is still the old one
// for readers.
func TestUncommittedTailLeavesTheStateAlone(t *testing.T) {
	e := leadingLog(t, 1)
	e.append(reg(1, inc1))
	e.append(reg(2, inc2))
	e.append(createTopic("t", 1)...) // led by broker 1
	committed, _ := e.log.End()
	if err := e.log.Commit(committed); err != nil {
		t.Fatal(err)
	}
	if err := e.log.Snapshot(); err != nil {
		t.Fatal(err)
	}
	e.append(&PartitionChanged{Topic: "t", Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2, LeaderEpoch: 1})
	e.append(&PartitionChanged{Topic: "t", Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 2})
	partition := func() Partition {
		var p Partition
		e.log.View(func(s *State) { p = s.Topics["t"].Partitions[0] })
		return p
	}

	e.reopen() // the snapshot holds the topic; the two changes are the tail
	if p := partition(); p.Leader != 1 || p.LeaderEpoch != 0 {
		t.Fatalf("after reopening, readers see leader %d in epoch %d of an uncommitted batch, want 1 in epoch 0", p.Leader, p.LeaderEpoch)
	}
	// What is left after a cut (the first change) is replayed again.
	if err := e.log.TruncateTo(committed + 1); err != nil {
		t.Fatal(err)
	}
	if p := partition(); p.Leader != 1 || p.LeaderEpoch != 0 {
		t.Fatalf("after the cut, readers see leader %d in epoch %d, want 1 in epoch 0", p.Leader, p.LeaderEpoch)
	}
	if err := e.log.Commit(committed + 1); err != nil {
		t.Fatal(err)
	}
	if p := partition(); p.Leader != 2 || p.LeaderEpoch != 1 || len(p.ISR) != 2 {
		t.Fatalf("after committing the first change: %+v", p)
	}
}

// TestReplayTellsWhatWaitsForTheCommit: a follower that restarts holding
// batches it has not seen committed says so, rather than only that its
// applied offset is 0.
func TestReplayTellsWhatWaitsForTheCommit(t *testing.T) {
	ctrl := leadingLog(t, 1)
	var out bytes.Buffer
	fol := newLogEnv(t, Options{Replicated: true, Logger: slog.New(slog.NewTextHandler(&out, nil))})
	ctrl.append(reg(1, inc1))
	ctrl.append(createTopic("a", 1)...)
	ship(t, fol.log, batchesFrom(t, ctrl.log, 0))
	out.Reset()
	fol.reopen()
	if got := out.String(); !strings.Contains(got, " offset=0 held_to=3 ") || !strings.Contains(got, "once the controller says it is committed") {
		t.Fatalf("replay of 3 held, uncommitted events logged:\n%s", got)
	}
}

// TestBatchCommittedUnderASnapshot: a follower that installed a snapshot
// covering a batch still tells whether that batch was committed when the
// snapshot's last batch is of its epoch (the same controller's history),
// and that a batch of a later epoch was not; for an earlier epoch it
// cannot tell, and says no.
func TestBatchCommittedUnderASnapshot(t *testing.T) {
	ctrl := leadingLog(t, 2)
	ctrl.append(reg(1, inc1))
	first := ctrl.append(createTopic("a", 1)...) + 2 // the end of the batch a relaying node waits for
	ctrl.append(createTopic("b", 1)...)
	end, _ := ctrl.log.End()
	if err := ctrl.log.Commit(end); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.log.Snapshot(); err != nil {
		t.Fatal(err)
	}
	data, off, err := ctrl.log.LatestSnapshot()
	if err != nil || off != end {
		t.Fatalf("snapshot at %d (log end %d): %v", off, end, err)
	}
	fol := newLogEnv(t, Options{Replicated: true})
	snap, err := DecodeShippedSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := fol.log.InstallDecoded(snap); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		end   int64
		epoch int32
		want  bool
	}{
		{first, 2, true},  // covered by the snapshot, its epoch
		{end, 2, true},    // the snapshot's last batch
		{first, 3, false}, // a later epoch than the snapshot's: replaced
		{first, 1, false}, // an earlier one: cannot tell
	} {
		if got := fol.log.BatchCommitted(c.end, c.epoch); got != c.want {
			t.Errorf("batch of epoch %d ending before %d: committed %v, want %v", c.epoch, c.end, got, c.want)
		}
		if got := ctrl.log.BatchCommitted(c.end, c.epoch); got != c.want {
			t.Errorf("on the controller, batch of epoch %d ending before %d: committed %v, want %v", c.epoch, c.end, got, c.want)
		}
	}
}
