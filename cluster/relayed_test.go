package cluster

import (
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// copyBatches gives to, as a follower takes them, the batches from's log
// holds from offset from on.
func copyBatches(t *testing.T, from, to *node, offset int64) {
	t.Helper()
	b, err := from.log.Segment().ReadWritten(offset, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	batches, _, err := wholeBatches(b)
	if err != nil {
		t.Fatal(err)
	}
	last, err := to.f.appendBatches(batches, from.log.EpochBefore(offset))
	if err != nil {
		t.Fatal(err)
	}
	if err := to.log.WaitShipped(last); err != nil {
		t.Fatal(err)
	}
}

// waiter is a cluster node as WaitCommit sees it: node id of voters, its
// metadata log l.
func waiter(t *testing.T, id int32, voters []int32, l *eventlog.Log) *Node {
	n := &Node{cfg: NodeConfig{ID: id, Voters: voters, Meta: l}, lg: slog.New(slog.DiscardHandler), quit: make(chan struct{})}
	t.Cleanup(func() { close(n.quit) })
	return n
}

// TestWaitCommitOnAHeldBatch: a node that holds durably the batch the
// controller answered once it held it too commits it (applies it) at once
// where the two are a majority of the voters, and only there; a batch of
// another epoch at those offsets is not the change answered.
func TestWaitCommitOnAHeldBatch(t *testing.T) {
	dir := t.TempDir()
	n1, n2 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2")
	n1.log.Lead(1)
	end := registerBroker(t, n1.log, 7) + 1
	copyBatches(t, n1, n2, 0)

	five := waiter(t, 2, []int32{1, 2, 3, 4, 5}, n2.log)
	if five.WaitCommit(end, 1, 100*time.Millisecond) {
		t.Fatal("with five voters, the controller and one follower committed a change")
	}
	if n2.log.Committed() != 0 {
		t.Fatalf("applied up to %d without a commit", n2.log.Committed())
	}
	observer := waiter(t, 4, []int32{1, 2, 3}, n2.log)
	if observer.WaitCommit(end, 1, 100*time.Millisecond) {
		t.Fatal("a node that is not a voter counted itself toward a majority")
	}
	three := waiter(t, 2, []int32{1, 2, 3}, n2.log)
	if three.WaitCommit(end, 2, 100*time.Millisecond) || n2.log.Committed() != 0 {
		t.Fatal("a batch of epoch 1 counted as the one of epoch 2 answered")
	}
	start := time.Now()
	if !three.WaitCommit(end, 1, 10*time.Second) {
		t.Fatal("the batch the controller and this node hold, two of three voters, did not commit")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("committed after %v, not at once", d)
	}
	var brokers []int32
	n2.log.View(func(s *eventlog.State) { brokers = slices.Collect(maps.Keys(s.Brokers)) })
	if !slices.Equal(brokers, []int32{7}) || n2.log.Committed() != end {
		t.Fatalf("brokers %v applied up to %d, want [7] up to %d", brokers, n2.log.Committed(), end)
	}
}

// TestWaitCommitRefusesAReplacedBatch: where a later controller's batch
// was committed at the offsets of the change answered (that change was
// never held by a majority, and was cut), the change is not committed, and
// the wait says so at once.
func TestWaitCommitRefusesAReplacedBatch(t *testing.T) {
	dir := t.TempDir()
	n1, n2, n3 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2"), startNode(t, 3, dir+"/3")
	n1.log.Lead(1)
	end := registerBroker(t, n1.log, 7) + 1
	n3.log.Lead(2)
	registerBroker(t, n3.log, 8)
	copyBatches(t, n3, n2, 0)
	if err := n2.log.Commit(end); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if waiter(t, 2, []int32{1, 2, 3}, n2.log).WaitCommit(end, 1, 10*time.Second) {
		t.Fatal("a change of epoch 1 counted as committed where epoch 2's is")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("answered after %v, not at once", d)
	}
}

// TestRelayedChangeCommits: on a cluster, a change the controller answered
// once its own copy was durable (AppendDurable) is committed and applied
// on a node that waits for it (WaitCommit), also with the third node cut
// off; one the controller took while cut off from both never is, there or
// anywhere, and the wait says so.
func TestRelayedChangeCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	all := startThree(t, false)
	defer func() { stopAll(all) }()
	ctrl := settled(t, all)
	others := without(all, ctrl)
	relay, third := others[0], others[1]
	third.node.SetCut(func(int32) bool { return true })
	for _, m := range []*member{ctrl, relay} {
		m.node.SetCut(func(id int32) bool { return id == third.id })
	}
	end, epoch, err := ctrl.node.AppendDurable(5*time.Second, topicEvents("relayed", ctrl.id)...)
	if err != nil {
		t.Fatal(err)
	}
	if !relay.node.WaitCommit(end, epoch, 10*time.Second) {
		t.Fatal("the change the controller answered did not commit on the relaying node")
	}
	relay.meta.View(func(s *eventlog.State) {
		if s.Topics["relayed"] == nil {
			t.Fatal("committed, but not applied on the relaying node")
		}
	})

	// The controller alone: what it answers now never commits.
	for _, m := range all {
		m.node.SetCut(nil)
	}
	ctrl.node.SetCut(func(id int32) bool { return id != ctrl.id })
	for _, m := range others {
		m.node.SetCut(func(id int32) bool { return id == ctrl.id })
	}
	end, epoch, err = ctrl.node.AppendDurable(5*time.Second, topicEvents("alone", ctrl.id)...)
	if err != nil {
		t.Fatal(err)
	}
	if relay.node.WaitCommit(end, epoch, 3*time.Second) {
		t.Fatal("a change only the cut-off controller held committed on another node")
	}
	var next *member
	for deadline := time.Now().Add(10 * time.Second); next == nil; time.Sleep(20 * time.Millisecond) {
		if next = controllerOf(others); time.Now().After(deadline) {
			t.Fatal("the majority did not elect a controller")
		}
	}
	for next.meta.Committed() < end {
		if _, err := next.node.Append(5*time.Second, &eventlog.BrokerRegistered{BrokerID: 9, Incarnation: eventlog.NewUUID()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the majority to commit past the change", others, func(s *eventlog.State) bool { return s.Offset >= end })
	if relay.node.WaitCommit(end, epoch, 10*time.Second) {
		t.Fatal("a change of the old controller's epoch counted as committed where the new one's batches are")
	}
	for _, m := range all {
		m.node.SetCut(nil)
	}
	waitFor(t, "every node to converge without the cut-off controller's change", all, func(s *eventlog.State) bool {
		return s.Topics["alone"] == nil && s.Topics["relayed"] != nil && s.Controller.Leader != ctrl.id
	})
}
