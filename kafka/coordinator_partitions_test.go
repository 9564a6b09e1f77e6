package kafka

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestOffsetsPartitionIsTheCoordinators: in a cluster every node names
// the group coordinator as the leader of __consumer_offsets-0, and only
// the coordinator serves it (and __transaction_state-0): another node's
// copy holds nothing, and reading it would look like no group ever
// committed. While the coordinator is fenced, the partition has no
// leader.
func TestOffsetsPartitionIsTheCoordinators(t *testing.T) {
	for _, node := range []int32{1, 2} {
		cl := &failingCluster{}
		b := memBroker(t, segmenttest.NewMemFS(), func(c *Config) { c.NodeID, c.Cluster = node, cl })
		cl.meta = b.meta
		for _, id := range []int32{2, 1, 3} {
			if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: id, Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9090 + id}}}); err != nil {
				t.Fatal(err)
			}
		}
		leader := func() (int32, []int32, int16) {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(group.Topic)
			req.Topics = append(req.Topics, rt)
			resp, err := metadata(b, req)
			if err != nil {
				t.Fatal(err)
			}
			p := resp.(*kmsg.MetadataResponse).Topics[0].Partitions[0]
			return p.Leader, p.Replicas, p.ErrorCode
		}
		if l, r, code := leader(); l != 1 || len(r) != 1 || r[0] != 1 || code != 0 {
			t.Fatalf("node %d: %s led by %d, replicas %v, error %d; want broker 1, the coordinator", node, group.Topic, l, r, code)
		}
		want := int16(0)
		if node != 1 {
			want = kerr.NotLeaderForPartition.Code
		}
		for _, topic := range []string{group.Topic, txn.Topic} {
			if _, code := b.openPartition(topic, 0); code != want && !(topic == txn.Topic && b.txns == nil) {
				t.Fatalf("node %d: reading %s-0: error %d, want %d", node, topic, code, want)
			}
		}
		if _, err := b.meta.Append(&eventlog.BrokerFenced{BrokerID: 1}); err != nil {
			t.Fatal(err)
		}
		if l, r, code := leader(); l != -1 || len(r) != 1 || r[0] != 1 || code != kerr.LeaderNotAvailable.Code {
			t.Fatalf("node %d: with the coordinator fenced, %s led by %d, replicas %v, error %d", node, group.Topic, l, r, code)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version, fc.CoordinatorKeys = 4, []string{"g"}
		resp, err := findCoordinator(b, fc)
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.(*kmsg.FindCoordinatorResponse).Coordinators[0]; c.ErrorCode != kerr.CoordinatorNotAvailable.Code || c.ErrorMessage == nil || !strings.Contains(*c.ErrorMessage, "broker 1, is fenced") {
			t.Fatalf("node %d: FindCoordinator with the coordinator fenced: error %d %v", node, c.ErrorCode, c.ErrorMessage)
		}
	}
}
