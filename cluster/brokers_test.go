package cluster

import (
	"log/slog"
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
