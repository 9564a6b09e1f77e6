package kafka

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// laggingController is a cluster of which this node is the controller,
// whose changes are answered once its own copy is durable and commit only
// when the test says so: a change answered before its commit (leader
// acks, or one relayed through another node) that the next request meets
// uncommitted.
type laggingController struct{ meta *eventlog.Log }

func (c *laggingController) Append(events ...eventlog.Event) (int64, error) {
	return c.meta.Append(events...)
}
func (c *laggingController) AppendRelayed(events ...eventlog.Event) (Uncommitted, error) {
	_, err := c.meta.Append(events...)
	return Uncommitted{}, err
}
func (c *laggingController) WaitCommit(Uncommitted) bool  { return true }
func (c *laggingController) Controller() (int32, bool)    { return 1, true }
func (c *laggingController) NotController(err error) bool { return errors.Is(err, errNotHere) }
func (c *laggingController) Quorum() Quorum               { return Quorum{Leader: 1, Voters: []int32{1}} }
func (c *laggingController) Up(int32) bool                { return true }
func (c *laggingController) Settle(time.Duration)         {}

// laggingBroker is a broker whose metadata log is a controller's copy that
// commits only what the test commits (broker 1's registration, here).
func laggingBroker(t *testing.T) *Broker {
	t.Helper()
	store := memStore(t, segmenttest.NewMemFS())
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	meta, err := eventlog.Open(store, eventlog.Options{Segment: &cfg, Replicated: true, SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	meta.Lead(1)
	off, err := meta.Append(&eventlog.BrokerRegistered{BrokerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Commit(off + 1); err != nil {
		t.Fatal(err)
	}
	b, err := NewBroker(Config{NodeID: 1, Host: "127.0.0.1", Port: 9092, ClusterID: "test", DefaultPartitions: 1, Cluster: &laggingController{meta: meta}},
		store, meta, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stopWaits)
	return b
}

// TestChangesCheckedAgainstUncommittedOnes: on the controller, a request
// that changes metadata is checked against every change the controller
// has taken, also those answered and not yet committed: partitions added,
// configs changed and the topic deleted right after a create answered
// that way find the topic, a second create finds it taken, and a second
// block of producer ids follows the first.
func TestChangesCheckedAgainstUncommittedOnes(t *testing.T) {
	b := laggingBroker(t)
	rc := &reqContext{}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "fresh", NumPartitions: 1, ReplicationFactor: -1}}
	created := func() int16 {
		resp, err := createTopics(b, rc, create)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
	}
	if code := created(); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	b.meta.View(func(s *eventlog.State) {
		if s.Topics["fresh"] != nil {
			t.Fatal("the test's controller committed the create")
		}
	})
	if code := created(); code != kerr.TopicAlreadyExists.Code {
		t.Fatalf("the same create again: %v, want TOPIC_ALREADY_EXISTS", kerr.ErrorForCode(code))
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "fresh", Count: 3}}
	resp, err := createPartitions(b, rc, cp)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("partitions added to the topic just created: %v", kerr.ErrorForCode(code))
	}

	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	value := "60000"
	alter.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fresh",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &value}}}}
	aresp, err := incrementalAlterConfigs(b, alter)
	if err != nil {
		t.Fatal(err)
	}
	if code := aresp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("a config of the topic just created: %v", kerr.ErrorForCode(code))
	}

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"fresh"}
	dresp, err := deleteTopics(b, del)
	if err != nil {
		t.Fatal(err)
	}
	if code := dresp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("the topic just created deleted: %v", kerr.ErrorForCode(code))
	}

	for i := range producerBlock + 1 {
		if _, err := b.newProducerID(); err != nil {
			t.Fatalf("producer id %d (blocks of %d): %v", i, producerBlock, err)
		}
	}
}
