package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// node is one member's metadata log and its follower endpoint.
type node struct {
	id    int32
	log   *eventlog.Log
	store *segment.Store
	addr  string
	ln    net.Listener
	f     *Follower
}

func startNode(t testing.TB, id int32, dir string) *node {
	t.Helper()
	return startNodeFS(t, id, dir, nil)
}

// startNodeFS is startNode on the file system fs (nil: the real one).
func startNodeFS(t testing.TB, id int32, dir string, fs segment.FS) *node {
	t.Helper()
	st, err := segment.OpenStore(dir, segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	l, err := eventlog.Open(st, eventlog.Options{Replicated: true, Segment: &cfg, SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, log: l, store: st, addr: ln.Addr().String(), ln: ln, f: NewFollower(l, nil)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var kind [1]byte
				if _, err := c.Read(kind[:]); err != nil || kind[0] != StreamMetadata {
					c.Close()
					return
				}
				n.f.Serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		l.Close()
		st.Close()
	})
	return n
}

// shipping starts nodes 1, 2 and 3 and node 1 as the controller of epoch
// 1, shipping its metadata log to the other two; the caller stops it.
func shipping(t testing.TB) (*Controller, *node, *node, *node) {
	dir := t.TempDir()
	n1, n2, n3 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2"), startNode(t, 3, dir+"/3")
	n1.log.Lead(1)
	return NewController(n1.log, 1, 1, []int32{1, 2, 3}, peersOf(n1, n1, n2, n3), nil), n1, n2, n3
}

func peersOf(self *node, all ...*node) map[int32]string {
	out := map[int32]string{}
	for _, n := range all {
		if n != self {
			out[n.id] = n.addr
		}
	}
	return out
}

func topics(l *eventlog.Log) []string {
	var out []string
	l.View(func(s *eventlog.State) {
		for name := range s.Topics {
			out = append(out, name)
		}
	})
	sort.Strings(out)
	return out
}

func state(l *eventlog.Log) string {
	var s string
	l.View(func(st *eventlog.State) { s = string(eventlog.EncodeSnapshot(st, 0)) })
	return s
}

func createTopic(name string) []eventlog.Event {
	return []eventlog.Event{
		&eventlog.TopicCreated{Name: name, TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1},
		&eventlog.PartitionChanged{Topic: name, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
	}
}

func appendCommitted(t *testing.T, c *Controller, l *eventlog.Log, events ...eventlog.Event) {
	t.Helper()
	off, err := l.Append(events...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCommitted(off+int64(len(events)), 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func converged(t *testing.T, end int64, nodes ...*node) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ok := true
		for _, n := range nodes {
			ok = ok && n.log.Committed() == end
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				e, _ := n.log.End()
				t.Logf("node %d: end %d committed %d", n.id, e, n.log.Committed())
			}
			t.Fatalf("the nodes did not all commit up to %d", end)
		}
	}
	for _, n := range nodes[1:] {
		if state(n.log) != state(nodes[0].log) {
			t.Fatalf("node %d's state differs from node %d's: %v vs %v", n.id, nodes[0].id, topics(n.log), topics(nodes[0].log))
		}
	}
}

// TestShipCommitAndControllerChange: a controller ships its log to two
// followers and commits with them; a new controller takes over while the
// old one holds a batch nobody else got; the old one truncates it and all
// three converge.
func TestShipCommitAndControllerChange(t *testing.T) {
	c1, n1, n2, n3 := shipping(t)
	appendCommitted(t, c1, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID(), Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 1}}})
	for i := range 30 {
		appendCommitted(t, c1, n1.log, createTopic(fmt.Sprint("t", i))...)
	}
	end, _ := n1.log.End()
	converged(t, end, n1, n2, n3)
	if len(topics(n2.log)) != 30 {
		t.Fatalf("follower has %d topics", len(topics(n2.log)))
	}

	// Node 1 stops shipping and takes one more batch nobody else gets.
	c1.Stop()
	if _, err := n1.log.Append(createTopic("lost")...); err != nil {
		t.Fatal(err)
	}
	n1.log.Follow() // it learns it is no longer the controller
	// Node 2 becomes controller in epoch 2.
	n2.log.Lead(2)
	c2 := NewController(n2.log, 2, 2, []int32{1, 2, 3}, peersOf(n2, n1, n2, n3), nil)
	defer c2.Stop()
	appendCommitted(t, c2, n2.log, &eventlog.LeaderChanged{Term: 2, Leader: 2, Voters: []int32{1, 2, 3}})
	appendCommitted(t, c2, n2.log, createTopic("kept")...)
	end, _ = n2.log.End()
	converged(t, end, n2, n1, n3)
	got := topics(n1.log)
	for _, name := range got {
		if name == "lost" {
			t.Fatal("the old controller kept a batch that was never committed")
		}
	}
	if len(got) != 31 {
		t.Fatalf("old controller has %d topics, want 31", len(got))
	}
}

// TestMinorityCannotCommit: a controller that reaches no follower commits
// nothing of its epoch.
func TestMinorityCannotCommit(t *testing.T) {
	dir := t.TempDir()
	n1 := startNode(t, 1, dir+"/1")
	n1.log.Lead(1)
	c := NewController(n1.log, 1, 1, []int32{1, 2, 3}, nil, nil)
	defer c.Stop()
	off, err := n1.log.Append(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCommitted(off+1, 300*time.Millisecond); err == nil {
		t.Fatal("a controller without followers committed")
	}
	var brokers int
	n1.log.View(func(s *eventlog.State) { brokers = len(s.Brokers) })
	if brokers != 0 || n1.log.Committed() != 0 {
		t.Fatal("uncommitted metadata is visible to readers")
	}
}

// TestStaleControllerIsRefused: once a follower has served epoch 2, a
// controller of epoch 1 is turned away.
func TestStaleControllerIsRefused(t *testing.T) {
	dir := t.TempDir()
	n1, n2 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2")
	n1.log.Lead(2)
	c := NewController(n1.log, 1, 2, []int32{1, 2}, peersOf(n1, n1, n2), nil)
	appendCommitted(t, c, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	c.Stop()
	conn, err := net.Dial("tcp", n2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := bufio.NewWriter(conn)
	w.WriteByte(StreamMetadata)
	writeFrame(w, kindHello, int32(1), int32(3))
	fr, err := readFrame(bufio.NewReader(conn))
	if err != nil || fr.kind != kindError || !strings.Contains(string(fr.rest()), "older than epoch 2") {
		t.Fatalf("a stale controller got %v %v", fr, err)
	}
}

// TestStaleControllerCannotCutTheController: node 1, controller of epoch
// 1, was deposed without knowing it; node 2 leads epoch 2 and holds a
// batch not yet committed. Node 1 ships to node 2 (which served epoch 1
// last): it must not make node 2 cut its own batch and take epoch 1's
// instead, or node 2 would write other batches of epoch 2 where its
// followers hold the first.
func TestStaleControllerCannotCutTheController(t *testing.T) {
	dir := t.TempDir()
	n1, n2 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2")
	n1.log.Lead(1)
	c1 := NewController(n1.log, 1, 1, []int32{1, 2}, peersOf(n1, n1, n2), nil)
	appendCommitted(t, c1, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	converged(t, 1, n1, n2)
	c1.Stop()

	n2.log.Lead(2)
	if _, err := n2.log.Append(createTopic("epoch-2")...); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.log.Append(createTopic("stale")...); err != nil {
		t.Fatal(err)
	}
	stale := NewController(n1.log, 1, 1, []int32{1, 2}, peersOf(n1, n1, n2), nil)
	defer stale.Stop()
	if err := stale.WaitCommitted(4, 500*time.Millisecond); err == nil {
		t.Fatal("the deposed controller committed through the current one")
	}
	b, err := n2.log.Segment().Read(1, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	own, stray := bytes.Contains(b, []byte("epoch-2")), bytes.Contains(b, []byte("stale"))
	if end, epoch := n2.log.End(); end != 3 || epoch != 2 || !own || stray {
		t.Fatalf("the controller's log ends at %d after epoch %d; holds its own batch: %v, the deposed one's: %v", end, epoch, own, stray)
	}
}

// TestRestartedFollowerRefusesAStaleController: node 3 holds a batch of
// epoch 2 that node 2 committed with it, and restarts (its commit point
// is then back at the start: it waits for a controller to say it). Node
// 1, controller of epoch 1 and deposed without knowing it, ships to it: it
// must not cut the committed batch and let node 1 commit in its place.
func TestRestartedFollowerRefusesAStaleController(t *testing.T) {
	dir := t.TempDir()
	n1, n2, n3 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2"), startNode(t, 3, dir+"/3")
	n1.log.Lead(1)
	c1 := NewController(n1.log, 1, 1, []int32{1, 2, 3}, peersOf(n1, n1, n2, n3), nil)
	appendCommitted(t, c1, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	converged(t, 1, n1, n2, n3)
	c1.Stop()

	n2.log.Lead(2)
	c2 := NewController(n2.log, 2, 2, []int32{1, 2, 3}, peersOf(n2, n3), nil)
	appendCommitted(t, c2, n2.log, createTopic("committed")...)
	c2.Stop()
	n3.ln.Close()
	n3.log.Close()
	n3.store.Close()
	n3 = startNode(t, 3, dir+"/3")

	if _, err := n1.log.Append(createTopic("stale")...); err != nil {
		t.Fatal(err)
	}
	stale := NewController(n1.log, 1, 1, []int32{1, 2, 3}, peersOf(n1, n3), nil)
	defer stale.Stop()
	if err := stale.WaitCommitted(4, 500*time.Millisecond); err == nil {
		t.Fatal("the deposed controller committed with the restarted follower")
	}
	b, err := n3.log.Segment().Read(1, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("committed")) || bytes.Contains(b, []byte("stale")) {
		t.Fatalf("the restarted follower holds the committed batch: %v, the deposed controller's: %v", bytes.Contains(b, []byte("committed")), bytes.Contains(b, []byte("stale")))
	}
}

// TestFollowerRefusesAControllerOlderThanItsTerm: a node whose Raft term
// is past a controller's epoch (it voted for a newer one, which has not
// shipped to it yet) takes nothing from that controller.
func TestFollowerRefusesAControllerOlderThanItsTerm(t *testing.T) {
	n1, n2 := epoch2Pair(t)
	n2.f.fence(3) // as Raft does when this node's term rises to 3
	c := NewController(n1.log, 1, 2, []int32{1, 2}, peersOf(n1, n1, n2), nil)
	defer c.Stop()
	off := registerBroker(t, n1.log, 1)
	if err := c.WaitCommitted(off+1, 500*time.Millisecond); err == nil {
		t.Fatal("a controller older than the follower's term committed with it")
	}
	if end, _ := n2.log.End(); end != 0 {
		t.Fatalf("the follower took the batches of a controller older than its term: its log ends at %d", end)
	}
}

// TestFollowerFencedMidSession: a follower whose Raft term rises past its
// controller's epoch while their session runs (it voted for a newer
// controller, whose vote compared its log without what came after) takes
// nothing more in that session: a batch it took and acknowledged then
// could be committed by the deposed controller and be missing from the new
// one. The fault test lost an acknowledged change this way, on a
// leadership transfer.
func TestFollowerFencedMidSession(t *testing.T) {
	n1, n2 := epoch2Pair(t)
	c := NewController(n1.log, 1, 2, []int32{1, 2}, peersOf(n1, n1, n2), nil)
	defer c.Stop()
	if err := c.WaitCommitted(registerBroker(t, n1.log, 1)+1, 5*time.Second); err != nil {
		t.Fatal(err) // the session runs
	}
	n2.f.fence(3) // as Raft does when the follower's term rises to 3
	end, _ := n2.log.End()
	if err := c.WaitCommitted(registerBroker(t, n1.log, 2)+1, 500*time.Millisecond); err == nil {
		t.Fatal("the deposed controller committed a change with a follower that had moved on to a newer term")
	}
	if after, _ := n2.log.End(); after != end {
		t.Fatalf("the fenced follower took the deposed controller's batch: its log grew from %d to %d", end, after)
	}
}

// epoch2Pair starts nodes 1 and 2, node 1's log leading epoch 2.
func epoch2Pair(t *testing.T) (n1, n2 *node) {
	t.Helper()
	dir := t.TempDir()
	n1, n2 = startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2")
	n1.log.Lead(2)
	return n1, n2
}

// registerBroker appends broker id's registration and returns its offset.
func registerBroker(t *testing.T, l *eventlog.Log, id int32) int64 {
	t.Helper()
	off, err := l.Append(&eventlog.BrokerRegistered{BrokerID: id, Incarnation: eventlog.NewUUID()})
	if err != nil {
		t.Fatal(err)
	}
	return off
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 13, kindAck, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 1, kindBatch})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := readFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(fr.b)+1 > len(b) {
			t.Fatalf("a frame of %d bytes from %d", len(fr.b)+1, len(b))
		}
		fr.i32()
		fr.i64()
		fr.rest()
		fr.done()
	})
}

// BenchmarkShipCommit: three metadata logs on this disk over loopback;
// one topic created at a time through the controller, answered once a
// majority holds it (quorum acks). Reports topics/s and latency.
func BenchmarkShipCommit(b *testing.B) {
	c, n1, _, _ := shipping(b)
	defer c.Stop()
	off, err := n1.log.Append(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	if err != nil || c.WaitCommitted(off+1, 10*time.Second) != nil {
		b.Fatal(err)
	}
	latency.Sequential(b, "topics", b.N, func(i int) error {
		evs := createTopic(fmt.Sprint("t", i))
		off, err := n1.log.Append(evs...)
		if err != nil {
			return err
		}
		return c.WaitCommitted(off+int64(len(evs)), 10*time.Second)
	})
}

// TestFarBehindFollowerGetsASnapshot: the controller's log no longer holds
// its first batches (snapshots covered them); a new follower gets the
// newest snapshot, in parts, then the batches after it, and has the same
// state.
func TestFarBehindFollowerGetsASnapshot(t *testing.T) {
	dir := t.TempDir()
	st, err := segment.OpenStore(dir+"/1", segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 16<<10, 16<<10
	ctrlLog, err := eventlog.Open(st, eventlog.Options{Replicated: true, Segment: &cfg, SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctrlLog.Lead(1)
	defer ctrlLog.Close()
	c := NewController(ctrlLog, 1, 1, []int32{1}, nil, nil) // alone: commits by itself
	appendCommitted(t, c, ctrlLog, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	for i := range 200 {
		appendCommitted(t, c, ctrlLog, createTopic(fmt.Sprint("topic-with-a-long-name-", i))...)
		if i == 100 || i == 150 {
			if err := ctrlLog.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ctrlLog.Segment().StartOffset() == 0 {
		t.Fatal("the controller's log still starts at 0: nothing was covered by a snapshot")
	}
	c.Stop()

	snap, _, err := ctrlLog.LatestSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	fol := startNode(t, 2, dir+"/2")
	c = NewController(ctrlLog, 1, 1, []int32{1, 2}, nil, nil)
	defer c.Stop()
	c.snapshotPart = len(snap)/5 + 1 // sent in five parts
	c.AddPeer(2, fol.addr)
	appendCommitted(t, c, ctrlLog, createTopic("after")...)
	end, _ := ctrlLog.End()
	for deadline := time.Now().Add(10 * time.Second); fol.log.Committed() != end; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			e, _ := fol.log.End()
			t.Fatalf("follower at %d (committed %d), controller at %d", e, fol.log.Committed(), end)
		}
	}
	if state(fol.log) != state(ctrlLog) {
		t.Fatal("the follower's state differs after the snapshot")
	}
	// It restarts from the installed snapshot.
	fol.log.Close()
	fol.store.Close()
	st2, err := segment.OpenStore(dir+"/2", segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	again, err := eventlog.Open(st2, eventlog.Options{Replicated: true, Segment: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if e, _ := again.End(); e != end {
		t.Fatalf("after a restart the follower ends at %d, want %d", e, end)
	}
}

// TestShipsWhileSyncing: the controller ships a batch as soon as it is
// written, so the followers hold it while the controller's own sync is
// still running; it is committed (and visible anywhere) only once the
// controller's copy is durable too.
func TestShipsWhileSyncing(t *testing.T) {
	dir := t.TempDir()
	disk := segmenttest.NewMemFS()
	n1, n2, n3 := startNodeFS(t, 1, dir+"/1", disk), startNode(t, 2, dir+"/2"), startNode(t, 3, dir+"/3")
	n1.log.Lead(1)
	c := NewController(n1.log, 1, 1, []int32{1, 2, 3}, peersOf(n1, n1, n2, n3), nil)
	defer c.Stop()
	appendCommitted(t, c, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	before := c.Committed()

	release := disk.HoldSyncs()
	defer release() // a failing test must not leave the log's sync waiting
	done := make(chan error, 1)
	go func() {
		off, err := n1.log.Append(createTopic("t")...)
		if err == nil {
			err = c.WaitCommitted(off+2, 10*time.Second)
		}
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		e2, _ := n2.log.End()
		e3, _ := n3.log.End()
		if e2 == before+2 && e3 == before+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the followers did not get the batch while the controller synced it: ends %d and %d, want %d", e2, e3, before+2)
		}
	}
	// Both followers acknowledged it (their acks may still be on the way):
	// a majority holds it, but not the controller.
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the change was answered before the controller's copy was durable (err %v)", err)
	default:
	}
	if got := c.Committed(); got != before {
		t.Fatalf("commit point %d moved past the controller's durable log (%d)", got, before)
	}
	for _, n := range []*node{n1, n2, n3} {
		if len(topics(n.log)) != 0 {
			t.Fatalf("node %d shows a change that is not committed", n.id)
		}
	}

	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := topics(n1.log); len(got) != 1 {
		t.Fatalf("the controller's readers do not see the committed change when it is answered: %v", got)
	}
	converged(t, before+2, n1, n2, n3)
}

// TestFollowersApplyCommitsAtOnce: a follower applies a change as soon as
// it is committed, not with the next batch or heartbeat (here an hour
// away): a topic created through the controller is on every node a round
// trip after its answer.
func TestFollowersApplyCommitsAtOnce(t *testing.T) {
	c, n1, n2, n3 := shipping(t)
	defer c.Stop()
	c.setHeartbeat(time.Hour)
	time.Sleep(2 * Heartbeat) // a heartbeat armed before fires first
	appendCommitted(t, c, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	appendCommitted(t, c, n1.log, createTopic("t")...)
	for deadline := time.Now().Add(10 * time.Second); len(topics(n2.log)) == 0 || len(topics(n3.log)) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the followers did not apply the committed topic: %v, %v (commit points %d and %d, controller's %d)",
				topics(n2.log), topics(n3.log), n2.log.Committed(), n3.log.Committed(), c.Committed())
		}
	}
}

// TestLoneChangesCommitAtOnce: while changes stream, a commit point waits
// for the next batch to ride with (or the linger, here an hour); a change
// that comes alone has its commit point sent at once.
func TestLoneChangesCommitAtOnce(t *testing.T) {
	c, n1, n2, n3 := shipping(t)
	defer c.Stop()
	c.setHeartbeat(time.Hour)
	time.Sleep(2 * Heartbeat)         // a heartbeat armed before fires first
	c.setLinger(time.Hour, time.Hour) // every batch after the first streams
	appendCommitted(t, c, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	// Both sessions run before the change that streams (a session that
	// begins later ships what is there at once, with its commit point).
	end, _ := n1.log.End()
	converged(t, end, n1, n2, n3)
	appendCommitted(t, c, n1.log, createTopic("streamed")...)
	time.Sleep(100 * time.Millisecond)
	if len(topics(n2.log)) != 0 || len(topics(n3.log)) != 0 {
		t.Fatalf("a streamed change's commit point went out alone before the linger: %v, %v", topics(n2.log), topics(n3.log))
	}
	c.setLinger(time.Hour, 0) // every batch comes alone
	appendCommitted(t, c, n1.log, createTopic("alone")...)
	for deadline := time.Now().Add(10 * time.Second); len(topics(n2.log)) != 2 || len(topics(n3.log)) != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the followers did not apply a lone change's commit: %v, %v", topics(n2.log), topics(n3.log))
		}
	}
}

// TestCommittedAsTheTermEnds: a change the controller found committed as
// its term ended (applied, not yet announced, when the term ends) is
// answered as committed, not as "no longer the controller".
func TestCommittedAsTheTermEnds(t *testing.T) {
	c := &Controller{commit: 5, waitc: make(chan struct{}), quit: make(chan struct{}), ended: make(chan struct{})}
	done := make(chan error)
	go func() { done <- c.WaitCommitted(6, time.Minute) }()
	time.Sleep(time.Millisecond) // waiting
	close(c.quit)                // the term ends while advance applies
	time.Sleep(time.Millisecond)
	c.mu.Lock()
	c.commit = 6 // advance announces
	close(c.waitc)
	c.mu.Unlock()
	close(c.ended) // Stop returns
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestUncommittedAnswers: a change a majority does not hold in time is
// ErrNotCommitted and a deadline (REQUEST_TIMED_OUT on the wire); one whose
// controller's term ends first is ErrNotController (NOT_CONTROLLER), so
// that a Kafka client retries either.
func TestUncommittedAnswers(t *testing.T) {
	c := &Controller{commit: 5, waitc: make(chan struct{}), quit: make(chan struct{}), ended: make(chan struct{})}
	err := c.WaitCommitted(6, time.Millisecond)
	if !errors.Is(err, ErrNotCommitted) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotController) {
		t.Fatalf("not committed in time: %v", err)
	}
	close(c.quit)
	close(c.ended)
	err = c.WaitCommitted(6, time.Minute)
	if !errors.Is(err, ErrNotController) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the term ended first: %v", err)
	}
}

// TestBatchesShareAFrame: a frame carries every batch written since the
// last one; the follower appends them all, acknowledges the end of the
// last, and applies them once committed. A frame whose last batch is cut
// short is refused.
func TestBatchesShareAFrame(t *testing.T) {
	dir := t.TempDir()
	n1, n2 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2")
	n1.log.Lead(1)
	c := NewController(n1.log, 1, 1, []int32{1}, nil, nil) // alone: ships nothing
	appendCommitted(t, c, n1.log, &eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	appendCommitted(t, c, n1.log, createTopic("a")...)
	appendCommitted(t, c, n1.log, createTopic("b")...)
	mid, _ := n1.log.End()
	appendCommitted(t, c, n1.log, createTopic("c")...)
	appendCommitted(t, c, n1.log, createTopic("d")...)
	end, _ := n1.log.End()
	c.Stop()
	read := func(from, to int64) []byte { // the batches in [from, to)
		b, err := n1.log.Segment().Read(from, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < len(b) {
			h, batch, err := segment.NextBatch(b[n:])
			if err != nil || h.BaseOffset >= to {
				break
			}
			n += len(batch)
		}
		return b[:n]
	}

	conn, err := net.Dial("tcp", n2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	w.WriteByte(StreamMetadata)
	writeFrame(w, kindHello, int32(1), int32(1))
	if fr, err := readFrame(r); err != nil || fr.kind != kindState {
		t.Fatalf("hello: %v %v", fr, err)
	}
	writeFrame(w, kindBatch, n1.log.EpochBefore(0), mid, read(0, mid))
	fr, err := readFrame(r)
	if err != nil || fr.kind != kindAck {
		t.Fatalf("three batches in one frame: %v %v", fr, err)
	}
	if got := fr.i64(); got != mid {
		t.Fatalf("acknowledged %d, want %d (the end of the frame's last batch)", got, mid)
	}
	for deadline := time.Now().Add(10 * time.Second); len(topics(n2.log)) != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // it applies after acknowledging
			t.Fatalf("the follower applied %v, want topics a and b", topics(n2.log))
		}
	}

	cut := read(mid, end)
	writeFrame(w, kindBatch, n1.log.EpochBefore(mid), end, cut[:len(cut)-10])
	if fr, err = readFrame(r); err != nil || fr.kind != kindError {
		t.Fatalf("a frame whose last batch is cut short: %v %v", fr, err)
	}
	if e, _ := n2.log.End(); e > end {
		t.Fatalf("the follower's log ends at %d, past the controller's %d", e, end)
	}
}

// TestFramesGoOutBeforeAcknowledgements: the controller sends up to
// maxInflight frames to a follower that has not acknowledged them, then
// waits; one acknowledgement lets the next frame go, carrying every batch
// written meanwhile.
func TestFramesGoOutBeforeAcknowledgements(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n1 := startNode(t, 1, t.TempDir())
	n1.log.Lead(1)
	c := NewController(n1.log, 1, 1, []int32{1, 2}, map[int32]string{2: ln.Addr().String()}, nil)
	defer c.Stop()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	if kind, _ := r.ReadByte(); kind != StreamMetadata {
		t.Fatalf("stream type %d", kind)
	}
	if fr, err := readFrame(r); err != nil || fr.kind != kindHello {
		t.Fatalf("hello: %v %v", fr, err)
	}
	writeFrame(w, kindState, int64(0), int32(-1)) // an empty log
	frames := make(chan []int64, 16)              // each frame's batch base offsets
	go func() {
		for {
			fr, err := readFrame(r)
			if err != nil {
				close(frames)
				return
			}
			if fr.kind != kindBatch {
				continue // a commit point
			}
			fr.i32()
			fr.i64()
			var bases []int64
			for b := fr.rest(); len(b) > 0; {
				h, batch, err := segment.NextBatch(b)
				if err != nil {
					t.Error(err)
					return
				}
				bases = append(bases, h.BaseOffset)
				b = b[len(batch):]
			}
			frames <- bases
		}
	}()
	reg, err := n1.log.Append(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-frames; len(got) != 1 || got[0] != reg {
		t.Fatalf("the registration's frame holds batches at %v", got)
	}
	writeFrame(w, kindAck, reg+1, int32(1))
	var ends []int64
	for i := range maxInflight + 2 {
		evs := createTopic(fmt.Sprint("t", i))
		off, err := n1.log.Append(evs...) // durable here, not committed
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, off+int64(len(evs)))
		if i < maxInflight {
			select {
			case got := <-frames:
				if len(got) != 1 || got[0] != off {
					t.Fatalf("frame %d holds batches at %v, want one at %d", i, got, off)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("frame %d was not sent while %d were unacknowledged", i, i)
			}
		}
	}
	select {
	case got := <-frames:
		t.Fatalf("a frame (batches at %v) went out with %d unacknowledged", got, maxInflight)
	case <-time.After(100 * time.Millisecond):
	}
	writeFrame(w, kindAck, ends[0], int32(1))
	select {
	case got := <-frames:
		if len(got) != 2 || got[0] != ends[maxInflight-1] {
			t.Fatalf("after an acknowledgement a frame with batches at %v, want the two written meanwhile from %d", got, ends[maxInflight-1])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no frame after an acknowledgement")
	}
}

// TestControllerBacksOffARefusingFollower: a follower that refuses the
// controller (a node of another cluster, say) is tried again after twice
// as long each time, not every 100 ms, each try a refusal it logs.
func TestControllerBacksOffARefusingFollower(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var tries atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tries.Add(1)
			r, w := bufio.NewReader(c), bufio.NewWriter(c)
			r.ReadByte()
			readFrame(r)
			writeFrame(w, kindError, "not this cluster's controller")
			c.Close()
		}
	}()
	n1 := startNode(t, 1, t.TempDir())
	n1.log.Lead(1)
	c := NewController(n1.log, 1, 1, []int32{1, 2}, map[int32]string{2: ln.Addr().String()}, nil)
	time.Sleep(1600 * time.Millisecond)
	c.Stop()
	// 100 ms each: 16 tries; doubling from 200 ms: 5 at most.
	if n := tries.Load(); n < 2 || n > 6 {
		t.Fatalf("%d tries in 1.6 s", n)
	}
}
