package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestVoterWithANewDiskCatchesUpFirst: a change committed by the
// controller and one follower (the third node cut off) is on those two
// only. The follower's disk is then replaced (its data directory wiped)
// and the controller goes down before the follower takes the log again:
// the node that lacks the change and the node with the new disk must not
// elect a controller between them, which would lose the change. Once the
// old controller is back, all three hold it, and the new disk's node
// votes again. On both paths.
func TestVoterWithANewDiskCatchesUpFirst(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) { testNewDisk(t, fallback) })
	}
}

func testNewDisk(t *testing.T, fallback bool) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	o := memberOpts{fallback: fallback}
	all, lead, lag, renewed := committedByTwo(t, o)
	defer func() { stopAll(all) }()
	lagID, renewedID, leadID := lag.id, renewed.id, lead.id // the cuts' closures run on other goroutines

	// The new disk, and the controller cut from it before it starts.
	gossipAddr, join := renewed.node.GossipAddr(), lead.node.GossipAddr()
	stopOne(all, renewed)
	if err := os.RemoveAll(renewed.dir); err != nil {
		t.Fatal(err)
	}
	lead.node.SetCut(func(id int32) bool { return id == lagID || id == renewedID })
	ro := o
	ro.gossipAddr = gossipAddr
	for run := range 2 { // and restarted while it catches up, it still is
		if run > 0 {
			stopOne(all, renewed)
		}
		renewed = startMemberWith(t, ro, renewedID, renewed.dir, join)
		all[renewedID-1] = renewed
		renewed.node.SetCut(func(id int32) bool { return id == leadID })
		if !renewed.node.catchingUp.Load() {
			t.Fatalf("run %d: a node started with an empty data directory is not catching up", run)
		}
	}
	// The two cannot elect one of them.
	leadDir, leadGossip := lead.dir, lead.node.GossipAddr()
	stopOne(all, lead)
	lag.node.SetCut(nil)
	renewed.node.SetCut(nil)
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := controllerOf([]*member{lag, renewed}); c != nil {
			t.Fatalf("node %d, which lacks a committed change, became the controller with the vote of the new disk's node", c.id)
		}
	}
	lo := o
	lo.gossipAddr = leadGossip
	back := startMemberWith(t, lo, leadID, leadDir, lag.node.GossipAddr())
	all[leadID-1] = back
	waitFor(t, "the change on every node", all, func(s *eventlog.State) bool { return s.Topics["committed-by-two"] != nil })
	waitCaughtUp(t, renewed, "the new disk's node")
	waitCaughtUp(t, lag, "the node that was cut off")
	// It votes again: with the old controller gone, the two elect one.
	stopOne(all, back)
	for deadline := time.Now().Add(10 * time.Second); controllerOf([]*member{lag, renewed}) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the two nodes left elect no controller")
		}
	}
}

// waitCaughtUp waits until m is caught up and has removed its file.
func waitCaughtUp(t *testing.T, m *member, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(filepath.Join(m.dir, "raft", catchUpFile))
		if !m.node.catchingUp.Load() && os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (node %d) is still catching up (file: %v)", what, m.id, err)
		}
	}
}

// TestNewDiskStartedBeforeTheOthers: as TestVoterWithANewDiskCatchesUpFirst,
// but every node is down when the new disk's node starts, first: the node
// that lacks the change starts next, and the two must not elect it (a
// node's gossip says its cluster formed from its start, before it knows a
// commit point). With the third node back, all three hold the change.
func TestNewDiskStartedBeforeTheOthers(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) { testNewDiskFirst(t, fallback) })
	}
}

func testNewDiskFirst(t *testing.T, fallback bool) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	o := memberOpts{fallback: fallback}
	all, lead, lag, renewed := committedByTwo(t, o)
	defer func() { stopAll(all) }()
	lagID := lag.id
	gossipOf := map[int32]string{}
	for _, m := range all {
		gossipOf[m.id] = m.node.GossipAddr()
	}
	for _, m := range append([]*member(nil), all...) {
		stopOne(all, m)
	}
	if err := os.RemoveAll(renewed.dir); err != nil {
		t.Fatal(err)
	}
	start := func(m *member, join ...string) *member {
		mo := o
		mo.gossipAddr = gossipOf[m.id]
		started := startMemberWith(t, mo, m.id, m.dir, join...)
		all[m.id-1] = started
		return started
	}
	renewed = start(renewed, gossipOf[lead.id], gossipOf[lagID]) // nobody answers yet
	lag = start(lag, gossipOf[renewed.id])
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := controllerOf([]*member{lag, renewed}); c != nil {
			t.Fatalf("node %d became the controller with the two that lack a committed change", c.id)
		}
	}
	start(lead, gossipOf[lagID])
	waitFor(t, "the change on every node", all, func(s *eventlog.State) bool { return s.Topics["committed-by-two"] != nil })
	waitCaughtUp(t, renewed, "the new disk's node")
}

// committedByTwo starts three members and commits "committed-by-two"
// through the controller (lead) with the one it returns as renewed, while
// lag is cut off: only lead and renewed hold the change.
func committedByTwo(t *testing.T, o memberOpts) (all []*member, lead, lag, renewed *member) {
	t.Helper()
	all = startThreeWith(t, o, t.TempDir())
	lead = settled(t, all)
	for _, m := range all {
		waitCaughtUp(t, m, "a node that formed the cluster")
		if m != lead {
			if lag == nil {
				lag = m
			} else {
				renewed = m
			}
		}
	}
	lagID := lag.id // the cuts' closures run on other goroutines
	lag.node.SetCut(func(int32) bool { return true })
	for _, m := range []*member{lead, renewed} {
		m.node.SetCut(func(id int32) bool { return id == lagID })
	}
	if _, err := lead.node.Append(10*time.Second, topicEvents("committed-by-two", lead.id)...); err != nil {
		stopAll(all)
		t.Fatal(err)
	}
	return all, lead, lag, renewed
}

// TestANewDiskCatchesUpWhileChangesStream: a follower's disk is replaced
// while four writers keep creating topics through the controller. The
// node must end its catching up (and vote again) once it holds what was
// committed before it started, not wait for a moment when no commit point
// it has heard is ahead of what it applied: while changes stream there is
// seldom such a moment, and a node that had applied everything held its
// vote back for seconds (the cluster fault test then lost its controller's
// disk too, and the two nodes catching up could elect no one). On both
// paths.
func TestANewDiskCatchesUpWhileChangesStream(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			if testing.Short() {
				t.Skip("runs a cluster")
			}
			o := memberOpts{fallback: fallback}
			all, lead, _, renewed := committedByTwo(t, o)
			defer func() { stopAll(all) }()
			defer streamChanges(4, func(w, i int) {
				lead.node.Append(time.Second, topicEvents(fmt.Sprintf("s%d-%d", w, i), lead.id)...)
			})()
			time.Sleep(200 * time.Millisecond)
			gossipAddr, id := renewed.node.GossipAddr(), renewed.id
			stopOne(all, renewed)
			if err := os.RemoveAll(renewed.dir); err != nil {
				t.Fatal(err)
			}
			// The new disk writes slower than the changes come: what it
			// has applied stays behind the controller's last commit point
			// until the writers stop.
			ro := o
			ro.gossipAddr, ro.fs = gossipAddr, slowWrites{segmenttest.NewMemFS(), time.Millisecond}
			renewed = startMemberWith(t, ro, id, renewed.dir, lead.node.GossipAddr())
			all[id-1] = renewed
			waitCaughtUp(t, renewed, "the new disk's node, while changes stream")
		})
	}
}

// slowWrites is a file system whose file writes take d longer.
type slowWrites struct {
	*segmenttest.MemFS
	d time.Duration
}

func (s slowWrites) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	f, err := s.MemFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return slowFile{f, s.d}, nil
}

type slowFile struct {
	segment.File
	d time.Duration
}

func (f slowFile) WriteAt(b []byte, off int64) (int, error) {
	time.Sleep(f.d)
	return f.File.WriteAt(b, off)
}
