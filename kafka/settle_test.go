package kafka

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// settlingCluster is a cluster of which this node is the controller, where
// a topic's creation commits only when a request settles (as a follower
// that holds the batch applies it when the commit point comes).
type settlingCluster struct {
	failingCluster
	pending []eventlog.Event
	settles atomic.Int32
}

func (c *settlingCluster) Settle(time.Duration) {
	c.settles.Add(1)
	if c.pending != nil {
		if _, err := c.meta.Append(c.pending...); err != nil {
			panic(err)
		}
		c.pending = nil
	}
}

// TestReadsSettleFirst: in a cluster, Metadata and DescribeConfigs settle
// before they read the metadata, a partition this node does not know to
// lead is looked up again once settled, and an offset commit naming a
// partition the metadata does not hold settles first: a topic whose commit
// point arrives meanwhile is served, not answered UNKNOWN_TOPIC_OR_PARTITION.
func TestReadsSettleFirst(t *testing.T) {
	cl := &settlingCluster{}
	b := memBroker(t, segmenttest.NewMemFS(), func(c *Config) { c.Cluster = cl })
	cl.meta = b.meta
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID(),
		Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}}); err != nil {
		t.Fatal(err)
	}
	commitsLater := func(name string) {
		cl.pending = []eventlog.Event{&eventlog.TopicCreated{Name: name, TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1},
			&eventlog.PartitionChanged{Topic: name, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}
	}

	commitsLater("in-metadata")
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("in-metadata")
	req.Topics = append(req.Topics, rt)
	resp, err := metadata(b, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.(*kmsg.MetadataResponse); len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("Metadata after the commit point came: %+v", r.Topics)
	}

	commitsLater("in-configs")
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, "in-configs"
	dreq.Resources = append(dreq.Resources, dr)
	dresp, err := describeConfigs(b, dreq)
	if err != nil {
		t.Fatal(err)
	}
	if r := dresp.(*kmsg.DescribeConfigsResponse); len(r.Resources) != 1 || r.Resources[0].ErrorCode != 0 {
		t.Fatalf("DescribeConfigs after the commit point came: %+v", r.Resources)
	}

	commitsLater("produced-to")
	before := cl.settles.Load()
	if _, code := b.partition("produced-to", 0); code != 0 {
		t.Fatalf("a partition whose commit point came meanwhile: %v", kerr.ErrorForCode(code))
	}
	if _, code := b.partition("produced-to", 0); code != 0 || cl.settles.Load() != before+1 {
		t.Fatalf("a known partition settled again (%d settles, want %d) or failed (%v)", cl.settles.Load(), before+1, kerr.ErrorForCode(code))
	}
	if _, code := b.partition("never-made", 0); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("a partition that does not exist: %v", kerr.ErrorForCode(code))
	}

	commitsLater("committed-to")
	creq := kmsg.NewPtrOffsetCommitRequest()
	creq.SetVersion(8)
	creq.Group, creq.Generation = "standalone", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "committed-to"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 1
	ct.Partitions = append(ct.Partitions, cp)
	creq.Topics = append(creq.Topics, ct)
	r := handlers[kmsg.OffsetCommit.Int16()].serve(b, &reqContext{}, creq)
	cresp, err := r.wait()
	if err != nil {
		t.Fatal(err)
	}
	if code := cresp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("a commit to a partition whose commit point came meanwhile: %v", kerr.ErrorForCode(code))
	}
}
