package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/gossip"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// member is one in-process cluster node and its files.
type member struct {
	id       int32
	dir      string
	store    *segment.Store
	meta     *eventlog.Log
	node     *Node
	fallback bool
	// learned gets each cluster id OnClusterID tells.
	learned chan string
}

// startMemberMode starts a member on the fast path or, with fallback, on
// the Raft fallback path.
func startMemberMode(t testing.TB, fallback bool, id int32, dir string, join ...string) *member {
	t.Helper()
	return startMemberWith(t, memberOpts{fallback: fallback}, id, dir, join...)
}

type memberOpts struct {
	fallback     bool
	fs           segment.FS // nil: the real file system
	onFatal      func(error)
	compactEvery int    // RaftCompactEntries
	compactBytes int64  // RaftCompactBytes
	segmentBytes int64  // of the metadata log; 0: 1 MiB
	gossipAddr   string // "": a free port (freeGossipAddr)
	// snapshotBytes: the fast path's metadata log takes a snapshot every
	// this many bytes; 0: never.
	snapshotBytes int64
	logger        *slog.Logger
	// clusterID gives node id this cluster id of its own; nil: none.
	clusterID func(id int32) string
	// voters given to the node; nil: 1, 2 and 3 unless expect is set.
	voters []int32
	// expect: the node bootstraps, waiting for this many nodes.
	expect int
}

func startMemberWith(t testing.TB, o memberOpts, id int32, dir string, join ...string) *member {
	t.Helper()
	m, err := startMemberErr(t, o, id, dir, join...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startMemberErr is startMemberWith, returning StartNode's error (with
// the member's files closed).
func startMemberErr(t testing.TB, o memberOpts, id int32, dir string, join ...string) (*member, error) {
	t.Helper()
	fallback := o.fallback
	st, err := segment.OpenStore(dir, segment.StoreOptions{FS: o.fs, RetentionCheckInterval: -1, Logger: o.logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	if o.segmentBytes > 0 {
		cfg.SegmentBytes = o.segmentBytes
	}
	snapshotBytes := int64(-1)
	if o.snapshotBytes > 0 && !fallback {
		snapshotBytes = o.snapshotBytes
	}
	meta, err := eventlog.Open(st, eventlog.Options{Replicated: !fallback, Segment: &cfg, SnapshotBytes: snapshotBytes, KeepSegments: fallback, Logger: o.logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gossipAddr := o.gossipAddr
	if gossipAddr == "" {
		gossipAddr = freeGossipAddr(t)
	}
	if o.logger == nil && os.Getenv("CHRONIK_TEST_LOG") != "" { // every member's log on stderr, to debug a test
		o.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id)
	}
	learned := make(chan string, 8)
	own := ""
	if o.clusterID != nil {
		own = o.clusterID(id)
	}
	voters := o.voters
	if voters == nil && o.expect == 0 {
		voters = []int32{1, 2, 3}
	}
	n, err := StartNode(NodeConfig{ID: id, Voters: voters, BootstrapExpect: o.expect, Meta: meta, RaftDir: dir + "/raft",
		Replication: ln, ReplicationAddr: ln.Addr().String(), KafkaAddr: fmt.Sprintf("127.0.0.1:%d", 9090+id),
		FS: o.fs, GossipAddr: gossipAddr, Join: join, GossipLocal: true, FenceAfter: time.Second, Fallback: fallback, OnFatal: o.onFatal,
		RaftCompactEntries: o.compactEvery, RaftCompactBytes: o.compactBytes, Logger: o.logger,
		ClusterID: own, OnClusterID: func(id string) { learned <- id }})
	if err != nil {
		ln.Close()
		meta.Close()
		st.Close()
		return nil, err
	}
	return &member{id: id, dir: dir, store: st, meta: meta, node: n, fallback: fallback, learned: learned}, nil
}

func (m *member) stop() {
	m.node.Stop()
	m.meta.Close()
	m.store.Close()
}

// startThree starts members 1, 2 and 3, the others joining 1's gossip.
func startThree(t testing.TB, fallback bool) []*member {
	t.Helper()
	return startThreeWith(t, memberOpts{fallback: fallback}, t.TempDir())
}

// startThreeWith starts members 1, 2 and 3 with o, their data under dir.
func startThreeWith(t testing.TB, o memberOpts, dir string) []*member {
	t.Helper()
	m1 := startMemberWith(t, o, 1, dir+"/1")
	m2 := startMemberWith(t, o, 2, dir+"/2", m1.node.GossipAddr())
	m3 := startMemberWith(t, o, 3, dir+"/3", m1.node.GossipAddr())
	return []*member{m1, m2, m3}
}

// stopOne stops member m of all, leaves nil in its place (it is down) and
// returns the others.
func stopOne(all []*member, m *member) []*member {
	m.stop()
	var rest []*member
	for i, o := range all {
		if o == m {
			all[i] = nil
		} else if o != nil {
			rest = append(rest, o)
		}
	}
	return rest
}

// stopAll stops the members that run (nil ones are down).
func stopAll(all []*member) {
	for _, m := range all {
		if m != nil {
			m.stop()
		}
	}
}

// settled waits until every member knows every member as a broker and a
// controller, and returns the member that is it.
func settled(t *testing.T, all []*member) *member {
	t.Helper()
	waitFor(t, "every member registered and a controller everywhere", all, func(s *eventlog.State) bool {
		return len(s.Brokers) == len(all) && s.Controller.Leader != 0
	})
	ctrl := controllerOf(all)
	if ctrl == nil {
		t.Fatal("no node says it is the controller")
	}
	return ctrl
}

// waitFor polls cond on every member's committed metadata.
func waitFor(t *testing.T, what string, ms []*member, cond func(*eventlog.State) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		all := true
		for _, m := range ms {
			ok := false
			m.meta.View(func(s *eventlog.State) { ok = cond(s) })
			all = all && ok
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// streamChanges runs n writers, each calling write with its number and a
// count from 0 until the returned stop is called; stop waits for them.
func streamChanges(n int, write func(w, i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				write(w, i)
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// without returns the members of ms other than m.
func without(ms []*member, m *member) []*member {
	var out []*member
	for _, o := range ms {
		if o != m {
			out = append(out, o)
		}
	}
	return out
}

func controllerOf(ms []*member) *member {
	for _, m := range ms {
		if _, self := m.node.Controller(); self {
			return m
		}
	}
	return nil
}

func brokerState(id int32, fenced bool) func(*eventlog.State) bool {
	return func(s *eventlog.State) bool {
		b := s.Brokers[id]
		return b != nil && b.Fenced == fenced
	}
}

// TestNodesElectShipAndFence: three nodes find each other by gossip, elect
// a controller, which registers all three; a topic it creates reaches every
// node; the controller stops: another takes over and fences it; it comes
// back and is unfenced.
func TestNodesElectShipAndFence(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) { testElectShipAndFence(t, fallback) })
	}
}

func testElectShipAndFence(t *testing.T, fallback bool) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all := startThree(t, fallback)
	defer func() { stopAll(all) }()
	ctrl := settled(t, all)
	// The topic's only copy is on the controller, which goes away later.
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("orders", ctrl.id)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the topic on every node", all, func(s *eventlog.State) bool { return s.Topics["orders"] != nil })
	for _, m := range all {
		if m != ctrl {
			if _, err := m.node.Append(time.Second, &eventlog.BrokerFenced{BrokerID: 1}); err != ErrNotController {
				t.Fatalf("node %d appended metadata while not the controller: %v", m.id, err)
			}
		}
	}

	// The controller goes away.
	old := ctrl
	rest := stopOne(all, old)
	waitFor(t, "a new controller that fenced the old one, leaving its partition without a leader", rest, func(s *eventlog.State) bool {
		return s.Controller.Leader != old.id && brokerState(old.id, true)(s) && s.Topics["orders"].Partitions[0].Leader == -1
	})

	// It comes back: unfenced.
	back := startMemberMode(t, fallback, old.id, old.dir, rest[0].node.GossipAddr())
	for i := range all {
		if all[i] == nil {
			all[i] = back
		}
	}
	waitFor(t, "the returning broker unfenced everywhere, leading its partition again", all, func(s *eventlog.State) bool {
		return brokerState(old.id, false)(s) && s.Topics["orders"].Partitions[0].Leader == old.id
	})
	waitFor(t, "the topic on the returning node", []*member{back}, func(s *eventlog.State) bool { return s.Topics["orders"] != nil })
	// The metadata logs end at the same offset, with the same state.
	sameMetadata(t, all)
}

func snapshotOf(l *eventlog.Log) string {
	var s string
	l.View(func(st *eventlog.State) { s = string(eventlog.EncodeSnapshot(st, 0)) })
	return s
}

func topicEvents(name string, leader int32) []eventlog.Event {
	return []eventlog.Event{
		&eventlog.TopicCreated{Name: name, TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1},
		&eventlog.PartitionChanged{Topic: name, Partition: 0, Replicas: []int32{leader}, ISR: []int32{leader}, Leader: leader},
	}
}

// TestPartitionedControllerCannotCommit: the controller is cut off from
// the other two. It cannot commit; they elect another controller, which
// can; when the cut heals, the old controller drops what it took alone and
// converges.
func TestPartitionedControllerCannotCommit(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) { testPartitionedController(t, fallback) })
	}
}

func testPartitionedController(t *testing.T, fallback bool) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all := startThree(t, fallback)
	m1, m2, m3 := all[0], all[1], all[2]
	defer func() { stopAll(all) }()
	old := settled(t, all)
	rest := without(all, old)
	for _, m := range rest {
		m.node.SetCut(func(id int32) bool { return id == old.id })
	}
	old.node.SetCut(func(id int32) bool { return id != old.id })

	if _, err := old.node.Append(time.Second, topicEvents("minority", old.id)...); err == nil {
		t.Fatal("a controller cut off from the majority committed")
	}
	var next *member
	for deadline := time.Now().Add(10 * time.Second); next == nil; time.Sleep(20 * time.Millisecond) {
		next = controllerOf(rest)
		if time.Now().After(deadline) {
			t.Fatal("the majority did not elect a controller")
		}
	}
	if _, err := next.node.Append(5*time.Second, topicEvents("majority", next.id)...); err != nil {
		t.Fatalf("the majority's controller cannot commit: %v", err)
	}
	for _, m := range all {
		m.meta.View(func(s *eventlog.State) {
			if s.Topics["minority"] != nil {
				t.Fatalf("node %d shows the minority's topic", m.id)
			}
		})
	}

	for _, m := range all {
		m.node.SetCut(nil)
	}
	waitFor(t, "every node to have the majority's topic and not the minority's", all, func(s *eventlog.State) bool {
		return s.Topics["majority"] != nil && s.Topics["minority"] == nil
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e1, _ := m1.meta.End()
		e2, _ := m2.meta.End()
		e3, _ := m3.meta.End()
		if e1 == e2 && e2 == e3 && m1.meta.Committed() == e1 && m2.meta.Committed() == e1 && m3.meta.Committed() == e1 &&
			snapshotOf(m1.meta) == snapshotOf(m2.meta) && snapshotOf(m2.meta) == snapshotOf(m3.meta) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs did not converge: ends %d %d %d", e1, e2, e3)
		}
	}
}

// withFragileNode starts three members on the fast path, member 1 on an
// in-memory file system whose syncs a test can fail, and its OnFatal
// reported on the channel.
func withFragileNode(t *testing.T) ([]*member, *segmenttest.MemFS, chan error) {
	t.Helper()
	dir := t.TempDir()
	fatal := make(chan error, 1)
	memfs := segmenttest.NewMemFS()
	m1 := startMemberWith(t, memberOpts{fs: memfs, onFatal: func(err error) { fatal <- err }}, 1, dir+"/1")
	m2 := startMemberMode(t, false, 2, dir+"/2", m1.node.GossipAddr())
	m3 := startMemberMode(t, false, 3, dir+"/3", m1.node.GossipAddr())
	return []*member{m1, m2, m3}, memfs, fatal
}

// TestNodeWhoseRaftStateCannotBeSavedLeaves: a node whose Raft storage
// refuses a sync (its metadata log untouched) leaves the quorum through
// OnFatal, as a node whose metadata log failed does, rather than staying up
// with Raft stopped: unable to vote or lead, and, were it the controller,
// still acting as one.
func TestNodeWhoseRaftStateCannotBeSavedLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all, memfs, fatal := withFragileNode(t)
	defer stopAll(all)
	m1 := all[0]
	ctrl := settled(t, all)
	memfs.FailSyncs(1)
	// A term change node 1 must save, with no metadata change.
	if ctrl == m1 {
		m1.node.TransferController(context.Background(), 2)
	} else {
		ctrl.node.TransferController(context.Background(), 1)
	}
	select {
	case err := <-fatal:
		if !strings.Contains(err.Error(), "raft") {
			t.Fatalf("node 1 left for another reason: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a node whose Raft state cannot be saved did not leave")
	}
}

// TestControllerWithAFailedLogLeaves: the controller's disk refuses syncs;
// it leaves the quorum (OnFatal), another node becomes the controller and
// metadata changes go on.
func TestControllerWithAFailedLogLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all, memfs, fatal := withFragileNode(t)
	defer stopAll(all)
	m1 := all[0]
	// Make node 1 the controller, then break its disk.
	makeController(t, all, m1)
	memfs.FailSyncs(1 << 30)
	if _, err := m1.node.Append(2*time.Second, topicEvents("doomed", 1)...); err == nil {
		t.Fatal("an append succeeded on a disk that refuses syncs")
	}
	select {
	case err := <-fatal:
		t.Logf("node 1 left the quorum: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the controller with a failed log did not leave")
	}
	anotherControllerCommits(t, all[1:], "no other controller")
}

// anotherControllerCommits waits until one of others is the controller,
// and commits a change there.
func anotherControllerCommits(t *testing.T, others []*member, none string) {
	t.Helper()
	var next *member
	for deadline := time.Now().Add(10 * time.Second); next == nil; time.Sleep(20 * time.Millisecond) {
		next = controllerOf(others)
		if time.Now().After(deadline) {
			t.Fatal(none)
		}
	}
	if _, err := next.node.Append(5*time.Second, topicEvents("after", next.id)...); err != nil {
		t.Fatalf("the new controller cannot commit: %v", err)
	}
}

// makeController waits for a controller, and has it hand the role to m
// until m acts as the controller.
func makeController(t *testing.T, all []*member, m *member) {
	t.Helper()
	waitFor(t, "three registered brokers and a controller", all, func(s *eventlog.State) bool {
		return len(s.Brokers) == 3 && s.Controller.Leader != 0
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if id, _ := m.node.Controller(); id == m.id {
			break
		}
		if c := controllerOf(all); c != nil && c != m {
			c.node.TransferController(context.Background(), m.id)
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not become the controller", m.id)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); controllerOf(all) != m; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d does not act as the controller", m.id)
		}
	}
}

// TestBootstrapExpect: three nodes started together without a voter list
// wait until they see each other, choose the same voters, elect a
// controller, and keep the voters across a restart. A node started later
// the same way, with a lower id than theirs, takes the voters they hold
// and is a broker that is not a voter (it used to choose itself and the
// two lowest of them: voters the others did not hold).
func TestBootstrapExpect(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	dir := t.TempDir()
	gossipAddrs := map[int32]string{}
	for id := int32(1); id <= 4; id++ {
		gossipAddrs[id] = freeGossipAddr(t)
	}
	o := memberOpts{expect: 3}
	start := func(id int32) (*member, error) {
		var join []string
		for other, a := range gossipAddrs {
			if other != id {
				join = append(join, a)
			}
		}
		o := o
		o.gossipAddr = gossipAddrs[id]
		return startMemberErr(t, o, id, fmt.Sprintf("%s/%d", dir, id), join...)
	}
	all := make([]*member, 3)
	errs := make(chan error, 3)
	for i := range all {
		go func() {
			m, err := start(int32(i + 2))
			all[i] = m
			errs <- err
		}()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, m := range all {
			m.stop()
		}
	}()
	waitFor(t, "three registered brokers and a controller", all, func(s *eventlog.State) bool {
		return len(s.Brokers) == 3 && s.Controller.Leader != 0 && slices.Equal(s.Controller.Voters, []int32{2, 3, 4})
	})
	for _, m := range all {
		if b, err := os.ReadFile(m.dir + "/raft/voters"); err != nil || string(b) != "2\n3\n4\n" {
			t.Fatalf("node %d's voters file: %q %v", m.id, b, err)
		}
	}
	for range 2 { // and again after a restart, from its voters file
		late, err := start(1)
		if err != nil {
			t.Fatal(err)
		}
		if got := late.node.Voters(); !slices.Equal(got, []int32{2, 3, 4}) {
			late.stop()
			t.Fatalf("the late node holds the voters %v", got)
		}
		waitFor(t, "the late node registered", append(all, late), func(s *eventlog.State) bool {
			return len(s.Brokers) == 4 && slices.Equal(s.Controller.Voters, []int32{2, 3, 4})
		})
		late.stop()
		if b, err := os.ReadFile(late.dir + "/raft/voters"); err != nil || string(b) != "2\n3\n4\n" {
			t.Fatalf("the late node's voters file: %q %v", b, err)
		}
	}
}

// TestVotersGivenApart: a node given other voters than the running nodes
// hold refuses to start, saying which voters they hold.
func TestVotersGivenApart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	dir := t.TempDir()
	all := startThreeWith(t, memberOpts{}, dir)
	defer func() {
		for _, m := range all {
			m.stop()
		}
	}()
	_, err := startMemberErr(t, memberOpts{voters: []int32{1, 2, 4}}, 4, dir+"/4", all[0].node.gsp.Addr())
	if err == nil || !strings.Contains(err.Error(), "holds the voters [1 2 3], and this node was given [1 2 4]") ||
		!strings.Contains(err.Error(), "--voters 1,2,3") {
		t.Fatalf("node 4 given voters 1, 2 and 4: %v", err)
	}
}

// TestHeldVoters: a bootstrapping node takes the voters the members hold,
// none while none holds any, and refuses members that hold different ones.
func TestHeldVoters(t *testing.T) {
	m := func(id int32, voters ...int32) gossip.Meta { return gossip.Meta{NodeID: id, Voters: voters} }
	if got, err := heldVoters([]gossip.Meta{m(1), m(2)}); got != nil || err != nil {
		t.Errorf("none held: %v %v", got, err)
	}
	if got, err := heldVoters([]gossip.Meta{m(1), m(2, 3, 2, 1), m(3, 1, 2, 3)}); !slices.Equal(got, []int32{1, 2, 3}) || err != nil {
		t.Errorf("held by two: %v %v", got, err)
	}
	if got, err := heldVoters([]gossip.Meta{m(1, 1, 2, 3), m(4, 1, 2, 4)}); err == nil {
		t.Errorf("held apart: %v, no error", got)
	}
}

// TestControllerOnAFullDiskHandsOver: the controller's disk fills up; once
// it has no room for new topics it hands the controller role to another
// voter, where creating topics goes on.
func TestControllerOnAFullDiskHandsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all, memfs, fatal := withFragileNode(t)
	defer stopAll(all)
	m1 := all[0]
	makeController(t, all, m1)
	memfs.SetCapacity(memfs.Allocated())
	full := false
	for i := 0; i < 10_000 && !full; i++ {
		_, err := m1.node.Append(2*time.Second, topicEvents(fmt.Sprintf("t%d", i), 1)...)
		full = errors.Is(err, syscall.ENOSPC)
		if err != nil && !full {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if !full {
		t.Fatal("10,000 topics created on a full disk")
	}
	anotherControllerCommits(t, all[1:], "the controller on a full disk kept its role")
	// Node 1 saves the terms that come with the hand-off in the room its
	// Raft log keeps ahead, and stays.
	select {
	case err := <-fatal:
		t.Fatalf("node 1 left the quorum: %v", err)
	default:
	}
}
