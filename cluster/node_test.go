package cluster

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// member is one in-process cluster node and its files.
type member struct {
	id    int32
	dir   string
	store *segment.Store
	meta  *eventlog.Log
	node  *Node
}

func startMember(t *testing.T, id int32, dir string, join ...string) *member {
	t.Helper()
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	meta, err := eventlog.Open(st, eventlog.Options{Replicated: true, Segment: &cfg, SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := StartNode(NodeConfig{ID: id, Voters: []int32{1, 2, 3}, Meta: meta, RaftDir: dir + "/raft",
		Replication: ln, ReplicationAddr: ln.Addr().String(), KafkaAddr: fmt.Sprintf("127.0.0.1:%d", 9090+id),
		GossipAddr: "127.0.0.1:0", Join: join, GossipLocal: true, FenceAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &member{id: id, dir: dir, store: st, meta: meta, node: n}
}

func (m *member) stop() {
	m.node.Stop()
	m.meta.Close()
	m.store.Close()
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
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	dir := t.TempDir()
	m1 := startMember(t, 1, dir+"/1")
	m2 := startMember(t, 2, dir+"/2", m1.node.GossipAddr())
	m3 := startMember(t, 3, dir+"/3", m1.node.GossipAddr())
	all := []*member{m1, m2, m3}
	defer func() {
		for _, m := range all {
			if m != nil {
				m.stop()
			}
		}
	}()
	waitFor(t, "three registered brokers and a controller everywhere", all, func(s *eventlog.State) bool {
		return len(s.Brokers) == 3 && s.Controller.Leader != 0
	})
	ctrl := controllerOf(all)
	if ctrl == nil {
		t.Fatal("no node says it is the controller")
	}
	if _, err := ctrl.node.Append(5*time.Second, &eventlog.TopicCreated{Name: "orders", TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1},
		&eventlog.PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2}); err != nil {
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
	old.stop()
	var rest []*member
	for i, m := range all {
		if m == old {
			all[i] = nil
		} else {
			rest = append(rest, m)
		}
	}
	waitFor(t, "a new controller that fenced the old one", rest, func(s *eventlog.State) bool {
		return s.Controller.Leader != old.id && brokerState(old.id, true)(s)
	})

	// It comes back: unfenced.
	back := startMember(t, old.id, old.dir, rest[0].node.GossipAddr())
	for i := range all {
		if all[i] == nil {
			all[i] = back
		}
	}
	waitFor(t, "the returning broker unfenced everywhere", all, brokerState(old.id, false))
	waitFor(t, "the topic on the returning node", []*member{back}, func(s *eventlog.State) bool { return s.Topics["orders"] != nil })
}
