package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/raft"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestFallbackCompactsRaftLog: on the Raft fallback path Raft's log is
// replaced by snapshots as metadata changes are applied. A node that was
// down while the others compacted past its entries gets a snapshot
// (installing the metadata snapshot it carries) and converges; after a
// restart of all three, each starts from its snapshot with the same
// metadata.
func TestFallbackCompactsRaftLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	dir := t.TempDir()
	o := memberOpts{fallback: true, compactEvery: 16}
	all := startThreeWith(t, o, dir)
	defer func() { stopAll(all) }()
	ctrl := settled(t, all)
	create := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := ctrl.node.Append(5*time.Second, topicEvents(fmt.Sprintf("t%d", i), ctrl.id)...); err != nil {
				t.Fatal(err)
			}
		}
	}
	topic := func(name string) func(*eventlog.State) bool {
		return func(s *eventlog.State) bool { return s.Topics[name] != nil }
	}
	create(0, 40)
	waitFor(t, "the first topics everywhere", all, topic("t39"))

	var down *member
	var rest []*member
	for i, m := range all {
		if m != ctrl && down == nil {
			down, all[i] = m, nil
			continue
		}
		rest = append(rest, m)
	}
	down.stop()
	create(40, 120)
	waitFor(t, "the later topics on the live nodes", rest, topic("t119"))
	ctrl.node.mu.Lock()
	compacted := ctrl.node.compactedAt
	ctrl.node.mu.Unlock()
	if compacted == 0 {
		t.Fatal("the controller never compacted Raft's log")
	}

	back := startMemberWith(t, o, down.id, down.dir, rest[0].node.GossipAddr())
	for i := range all {
		if all[i] == nil {
			all[i] = back
		}
	}
	waitFor(t, "the later topics on the returning node", []*member{back}, topic("t119"))
	if start := back.meta.Segment().StartOffset(); start == 0 {
		t.Fatal("the returning node replayed entries the leader had compacted: it installed no snapshot")
	}
	sameMetadata(t, all)

	stopAll(all)
	all = nil // stopped: not again if a start fails
	all = startThreeWith(t, o, dir)
	waitFor(t, "every topic after a restart of all three, and a controller", all, func(s *eventlog.State) bool {
		return topic("t119")(s) && s.Controller.Leader != 0
	})
	// Changes after the restart go on where the snapshots left off.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ctrl = controllerOf(all); ctrl != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no controller after the restart")
		}
	}
	create(120, 130)
	waitFor(t, "topics created after the restart everywhere", all, topic("t129"))
	sameMetadata(t, all)
}

// TestFallbackCompactsByBytes: Raft's log is compacted once the entries
// applied since the last compaction hold RaftCompactBytes, however few
// they are.
func TestFallbackCompactsByBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all := startThreeWith(t, memberOpts{fallback: true, compactEvery: 1 << 20, compactBytes: 16 << 10}, t.TempDir())
	defer stopAll(all)
	ctrl := settled(t, all)
	for i := 0; ; i++ {
		if _, err := ctrl.node.Append(5*time.Second, topicEvents(fmt.Sprintf("t%d", i), ctrl.id)...); err != nil {
			t.Fatal(err)
		}
		ctrl.node.mu.Lock()
		compacted := ctrl.node.compactedAt
		ctrl.node.mu.Unlock()
		if compacted > 0 {
			t.Logf("compacted after %d creates", i+1)
			return
		}
		if i == 2000 {
			t.Fatal("2,000 creates and Raft's log was never compacted")
		}
	}
}

// TestFallbackReplaysARefusedEntry: on the fallback path a change that no
// longer applies when committed (a topic created twice) is written as a
// NoOp batch; a restart re-applies Raft's entries and must recognise that
// NoOp as the entry's, or every later entry would look like a divergence
// and the node's metadata would stop there.
func TestFallbackReplaysARefusedEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	dir := t.TempDir()
	o := memberOpts{fallback: true}
	all := startThreeWith(t, o, dir)
	defer func() { stopAll(all) }()
	ctrl := settled(t, all)
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("dup", ctrl.id)...); err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("dup", ctrl.id)...); !errors.Is(err, eventlog.ErrRefused) {
		t.Fatalf("the same topic again: %v, want ErrRefused", err)
	}
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("after", ctrl.id)...); err != nil {
		t.Fatal(err)
	}
	has := func(name string) func(*eventlog.State) bool {
		return func(s *eventlog.State) bool { return s.Topics[name] != nil }
	}
	waitFor(t, "the topics everywhere", all, has("after"))
	sameMetadata(t, all)

	stopAll(all)
	all = nil
	all = startThreeWith(t, o, dir)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ctrl = controllerOf(all); ctrl != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no controller after the restart")
		}
	}
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("later", ctrl.id)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a topic created after the restart everywhere", all, has("later"))
	sameMetadata(t, all)
}

// fallbackApplier is a fallback node's applying half alone, over a
// metadata log on fs: what applyEntries needs, and no Raft.
func fallbackApplier(t *testing.T, fs *segmenttest.MemFS) (*Node, *eventlog.Log) {
	t.Helper()
	st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	meta, err := eventlog.Open(st, eventlog.Options{SnapshotBytes: -1, KeepSegments: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(meta.Close)
	n := &Node{cfg: NodeConfig{ID: 1, Meta: meta, Fallback: true}, lg: slog.New(slog.DiscardHandler), waiters: map[uint64]chan applied{},
		kick: make(chan struct{}, 1)}
	return n, meta
}

// TestEntryOfAnEarlierRunAnswersNoOne: an entry this node proposed before
// a crash, committed but not yet applied then, is applied after the
// restart; it must not answer the new run's proposal that waits under
// the same sequence number it had in the old run's numbering.
func TestEntryOfAnEarlierRunAnswersNoOne(t *testing.T) {
	n, meta := fallbackApplier(t, segmenttest.NewMemFS())
	n.seq = firstSeq()
	waiting := make(chan applied, 1)
	n.waiters[n.seq+1] = waiting // the new run's first proposal

	earlier := firstSeq() // the earlier run's numbering
	batch, err := meta.EncodeBatch(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	if err != nil {
		t.Fatal(err)
	}
	n.applyEntries([]raft.Entry{{Index: 1, Term: 1, Data: encodeProposal(1, earlier+1, batch)}})
	var applied bool
	meta.View(func(s *eventlog.State) { applied = s.Brokers[1] != nil })
	if !applied {
		t.Fatal("the earlier run's entry was not applied")
	}
	select {
	case r := <-waiting:
		t.Fatalf("the earlier run's entry answered the new run's proposal: %+v", r)
	default:
	}
}

// TestFailedLogStopsNotingApplied: once the metadata log fails, the
// entries Raft commits are no longer noted as applied, so no compaction
// of Raft's log covers an entry the metadata log does not hold.
func TestFailedLogStopsNotingApplied(t *testing.T) {
	fs := segmenttest.NewMemFS()
	n, meta := fallbackApplier(t, fs)
	entry := func(index uint64, id int32) raft.Entry {
		batch, err := meta.EncodeBatch(&eventlog.BrokerRegistered{BrokerID: id, Incarnation: eventlog.NewUUID()})
		if err != nil {
			t.Fatal(err)
		}
		return raft.Entry{Index: index, Term: 1, Data: encodeProposal(2, index, batch)}
	}
	n.applyEntries([]raft.Entry{entry(1, 1)})
	fs.FailSyncs(1 << 30)
	n.applyEntries([]raft.Entry{entry(2, 2), {Index: 3, Term: 2}})
	n.applyEntries([]raft.Entry{entry(4, 3)})
	if meta.Failed() == nil {
		t.Fatal("the metadata log did not fail")
	}
	if len(n.applied) != 1 || n.applied[0].index != 1 {
		t.Fatalf("entries noted as applied: %+v, want only the one written", n.applied)
	}
}

// sameMetadata waits until the members' metadata logs end at the same offset
// with the same state.
func sameMetadata(t *testing.T, all []*member) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e1, _ := all[0].meta.End()
		e2, _ := all[1].meta.End()
		e3, _ := all[2].meta.End()
		s1, s2, s3 := snapshotOf(all[0].meta), snapshotOf(all[1].meta), snapshotOf(all[2].meta)
		if e1 == e2 && e2 == e3 && s1 == s2 && s2 == s3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metadata logs differ: ends %d %d %d; node %d against %d: %s; node %d against %d: %s; node %d's last records: %s", e1, e2, e3,
				all[0].id, all[1].id, stateDiff(all[0].meta, all[1].meta), all[0].id, all[2].id, stateDiff(all[0].meta, all[2].meta),
				all[0].id, lastRecords(all[0].meta, 8))
		}
	}
}

// stateDiff describes where two logs' states differ: the fields, and in
// maps the first keys, with both values.
func stateDiff(a, b *eventlog.Log) string {
	fields := func(l *eventlog.Log) map[string]json.RawMessage {
		var raw []byte
		l.View(func(s *eventlog.State) { raw, _ = json.Marshal(s) })
		var m map[string]json.RawMessage
		json.Unmarshal(raw, &m)
		return m
	}
	fa, fb := fields(a), fields(b)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(fa)) {
		if bytes.Equal(fa[k], fb[k]) {
			continue
		}
		var ma, mb map[string]json.RawMessage
		if json.Unmarshal(fa[k], &ma) != nil || json.Unmarshal(fb[k], &mb) != nil {
			out = append(out, fmt.Sprintf("%s: %.300s against %.300s", k, fa[k], fb[k]))
			continue
		}
		keys := maps.Clone(ma)
		maps.Copy(keys, mb)
		shown := 0
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			if !bytes.Equal(ma[key], mb[key]) && shown < 3 {
				out = append(out, fmt.Sprintf("%s[%s]: %.300s against %.300s", k, key, ma[key], mb[key]))
				shown++
			}
		}
	}
	if len(out) == 0 {
		return "the same"
	}
	return strings.Join(out, "; ")
}

// FuzzDecodeRaftSnapshot: a Raft snapshot's data comes from a peer or from
// raft.wal; decoding never panics, and what encodes decodes back.
func FuzzDecodeRaftSnapshot(f *testing.F) {
	f.Add(encodeRaftSnapshot(42, []byte("state")))
	f.Add([]byte{raftSnapshotVersion, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		off, meta, err := decodeRaftSnapshot(data)
		if err != nil {
			return
		}
		if again := encodeRaftSnapshot(off, meta); string(again) != string(data) {
			t.Fatalf("decoded %d/%q, encodes to %x, not %x", off, meta, again, data)
		}
	})
}

// FuzzDecodeProposal: a Raft entry's data comes from a peer or from
// raft.wal; decoding never panics, and what decodes encodes back.
func FuzzDecodeProposal(f *testing.F) {
	f.Add(encodeProposal(3, 7, []byte("batch")))
	f.Add([]byte{proposalVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		proposer, seq, batch, err := decodeProposal(data)
		if err != nil {
			return
		}
		if again := encodeProposal(proposer, seq, batch); string(again) != string(data) {
			t.Fatalf("decoded %d/%d/%q, encodes to %x, not %x", proposer, seq, batch, again, data)
		}
	})
}

// FuzzDumpRaft: any Raft storage file dumps without a panic.
func FuzzDumpRaft(f *testing.F) {
	// A real one: a hard state, an empty entry, a proposal and a snapshot.
	dir := f.TempDir()
	st, _, err := raft.OpenStorage(nil, dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	store, err := segment.OpenStore(f.TempDir(), segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	meta, err := eventlog.Open(store, eventlog.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer meta.Close()
	batch, err := meta.EncodeBatch(&eventlog.TopicCreated{Name: "t", TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1})
	if err != nil {
		f.Fatal(err)
	}
	ents := []raft.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2, Data: encodeProposal(1, 7, batch)}}
	if err := st.Save(&raft.HardState{Term: 1, Vote: 1, Commit: 2}, nil, ents); err != nil {
		f.Fatal(err)
	}
	if err := st.Save(nil, &raft.Snapshot{Index: 2, Term: 1, Data: encodeRaftSnapshot(3, []byte("state"))}, nil); err != nil {
		f.Fatal(err)
	}
	st.Close()
	real, err := os.ReadFile(filepath.Join(dir, "raft.wal"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "raft.wal"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := DumpRaft(io.Discard, dir, len(b)%2 == 0); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDivergedLogSaysHowToRecover: a committed entry unlike the batch this
// node's metadata log holds at its place takes the node out of the quorum
// (OnFatal), naming the directories the operator removes to take the
// cluster's metadata again (TestNodeTakesItsMetadataAgain, in cmd/chronik,
// does that).
func TestDivergedLogSaysHowToRecover(t *testing.T) {
	n, meta := fallbackApplier(t, segmenttest.NewMemFS())
	n.cfg.RaftDir = "/d/__raft"
	fatal := make(chan error, 1)
	n.cfg.OnFatal = func(err error) { fatal <- err }
	entry := func(index uint64, e eventlog.Event) raft.Entry {
		batch, err := meta.EncodeBatch(e)
		if err != nil {
			t.Fatal(err)
		}
		return raft.Entry{Index: index, Term: 1, Data: encodeProposal(2, uint64(index), batch)}
	}
	n.applyEntries([]raft.Entry{entry(1, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})})
	n.replay = 0 // as if this log held a batch the cluster did not commit
	n.applyEntries([]raft.Entry{entry(1, &eventlog.BrokerRegistered{BrokerID: 2, Incarnation: eventlog.NewUUID()})})
	select {
	case err := <-fatal:
		msg := err.Error()
		if !errors.Is(err, eventlog.ErrDiverged) || !strings.Contains(msg, "remove /d/__chronik_metadata-0 and /d/__raft, and start it") {
			t.Fatalf("the node left with: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a diverged metadata log did not take the node out of the quorum")
	}
}
