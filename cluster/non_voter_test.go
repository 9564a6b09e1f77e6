package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// TestNonVoterDoesNotCount: a broker that is not a voter gets the
// metadata log, but its acknowledgement commits nothing; a voter's does.
func TestNonVoterDoesNotCount(t *testing.T) {
	dir := t.TempDir()
	n1, n2, n4 := startNode(t, 1, dir+"/1"), startNode(t, 2, dir+"/2"), startNode(t, 4, dir+"/4")
	n1.log.Lead(1)
	c := NewController(n1.log, 1, 1, []int32{1, 2, 3}, peersOf(n1, n4), nil)
	defer c.Stop()
	off, err := n1.log.Append(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()})
	if err != nil {
		t.Fatal(err)
	}
	end := off + 1
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, _ := n4.log.End(); got == end {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broker that is not a voter never got the batch")
		}
	}
	if err := c.WaitCommitted(end, 300*time.Millisecond); err == nil {
		t.Fatal("the controller and a broker that is not a voter, 1 of 3 voters, committed")
	}
	c.AddPeer(2, n2.addr)
	if err := c.WaitCommitted(end, 10*time.Second); err != nil {
		t.Fatalf("with voter 2: %v", err)
	}
	converged(t, end, n1, n2, n4)
}

// TestBrokerThatIsNotAVoter: node 4 of a cluster whose voters are 1, 2
// and 3 (a Raft learner) is registered, follows the controller's
// metadata, names the controller, and follows the next one when the
// controller goes away; it cannot append, and it catches up after a
// restart. On both paths.
func TestBrokerThatIsNotAVoter(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) { testBrokerThatIsNotAVoter(t, fallback) })
	}
}

func testBrokerThatIsNotAVoter(t *testing.T, fallback bool) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	dir := t.TempDir()
	o := memberOpts{fallback: fallback}
	all := startThreeWith(t, o, dir)
	n4 := startMemberWith(t, o, 4, dir+"/4", all[0].node.GossipAddr())
	all = append(all, n4)
	defer func() { stopAll(all) }()
	waitFor(t, "four registered brokers and a controller everywhere", all, func(s *eventlog.State) bool {
		return len(s.Brokers) == 4 && s.Controller.Leader != 0
	})
	ctrl := controllerOf(all[:3])
	names := func(want int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			id, self := n4.node.Controller()
			if id == want && !self {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node 4 names controller %d (itself: %v), not %d", id, self, want)
			}
		}
	}
	names(ctrl.id)
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("orders", 4)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the topic on every node", all, func(s *eventlog.State) bool { return s.Topics["orders"] != nil })
	if _, err := n4.node.Append(time.Second, &eventlog.BrokerFenced{BrokerID: 1}); !errors.Is(err, ErrNotController) {
		t.Fatalf("node 4 appended metadata: %v", err)
	}

	// The controller goes away: node 4 follows the next one.
	old := ctrl
	rest := stopOne(all, old)
	waitFor(t, "a new controller", rest, func(s *eventlog.State) bool {
		return s.Controller.Leader != 0 && s.Controller.Leader != old.id
	})
	ctrl = controllerOf(rest)
	if ctrl == nil || ctrl == n4 {
		t.Fatalf("the new controller is %v", ctrl)
	}
	names(ctrl.id)
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("payments", 4)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second topic on node 4", []*member{n4}, func(s *eventlog.State) bool { return s.Topics["payments"] != nil })

	// Restarted, it catches up (here, on a topic created while it was
	// down).
	again := o
	again.gossipAddr = n4.node.GossipAddr()
	n4.stop()
	all[3] = nil
	if _, err := ctrl.node.Append(5*time.Second, topicEvents("refunds", ctrl.id)...); err != nil {
		t.Fatal(err)
	}
	n4 = startMemberWith(t, again, 4, n4.dir, ctrl.node.GossipAddr())
	all[3] = n4
	waitFor(t, "the third topic on node 4", []*member{n4}, func(s *eventlog.State) bool { return s.Topics["refunds"] != nil })
	names(ctrl.id)
}
