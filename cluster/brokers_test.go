package cluster

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/gossip"
)

// TestReturnedBrokerIsNotFencedAgain: a broker gossip shows alive, with a
// grace noted for it while it was away (or in a race with its return),
// is neither fenced nor, after it, unfenced again and again: the
// controller appends nothing for it.
func TestReturnedBrokerIsNotFencedAgain(t *testing.T) {
	meta := memLog(t, nil)
	meta.Lead(1)
	c := NewController(meta, 1, 1, []int32{1}, nil, nil) // alone: commits by itself
	defer c.Stop()
	n := &Node{cfg: NodeConfig{ID: 1, Meta: meta, KafkaAddr: "127.0.0.1:9091", FenceAfter: time.Second}, lg: slog.New(slog.DiscardHandler),
		members: map[int32]gossip.Meta{2: {NodeID: 2, KafkaAddr: "127.0.0.1:9092"}},
		failed:  map[int32]time.Time{2: time.Now().Add(-time.Hour)}, leading: true, ctrl: c}
	for id, addr := range map[int32]string{1: "127.0.0.1:9091", 2: "127.0.0.1:9092"} {
		ep, _ := endpoint(addr)
		if _, err := n.Append(time.Second, &eventlog.BrokerRegistered{BrokerID: id, Incarnation: eventlog.NewUUID(), Endpoints: []eventlog.Endpoint{ep}}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := meta.End()
	for range 3 {
		n.reconcileBrokers()
	}
	if end, _ := meta.End(); end != before {
		t.Fatalf("the controller appended %d events for brokers that are registered and alive", end-before)
	}
	if _, stale := n.failed[2]; stale {
		t.Fatal("the grace of a broker that is back was kept")
	}
}

// TestFencingIsLogged: the controller says which broker it fenced and
// where that broker's partitions went, once the change is committed.
func TestFencingIsLogged(t *testing.T) {
	meta := memLog(t, nil)
	meta.Lead(1)
	c := NewController(meta, 1, 1, []int32{1}, nil, nil)
	defer c.Stop()
	var out bytes.Buffer
	n := &Node{cfg: NodeConfig{ID: 1, Meta: meta, KafkaAddr: "127.0.0.1:9091", FenceAfter: time.Second}, lg: slog.New(slog.NewTextHandler(&out, nil)),
		members: map[int32]gossip.Meta{}, failed: map[int32]time.Time{2: time.Now().Add(-time.Minute)}, leading: true, ctrl: c}
	var setup []eventlog.Event
	for id, addr := range map[int32]string{1: "127.0.0.1:9091", 2: "127.0.0.1:9092"} {
		ep, _ := endpoint(addr)
		setup = append(setup, &eventlog.BrokerRegistered{BrokerID: id, Incarnation: eventlog.NewUUID(), Endpoints: []eventlog.Endpoint{ep}})
	}
	setup = append(setup, &eventlog.TopicCreated{Name: "orders", TopicID: eventlog.NewUUID(), PartitionCount: 2, ReplicationFactor: 1},
		&eventlog.PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2},
		&eventlog.PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{2, 1}, ISR: []int32{2, 1}, Leader: 2})
	if _, err := n.Append(time.Second, setup...); err != nil {
		t.Fatal(err)
	}
	n.reconcileBrokers()
	got := out.String()
	for _, want := range []string{`msg="controller: fenced broker`, "broker=2", "new_leaders=orders-1→1", "without_leader=orders-0"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the controller's log lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n") != 1 {
		t.Fatalf("want one line for the one fenced broker, got:\n%s", got)
	}
}

func TestLoggedPartitionsAreBounded(t *testing.T) {
	var ps []string
	for i := range 25 {
		ps = append(ps, "t-"+strconv.Itoa(i))
	}
	if got := partitionList(ps); !strings.HasSuffix(got, "t-19 and 5 more") {
		t.Fatalf("partitionList of 25: %q", got)
	}
}
