package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// laggingBroker is node 1's broker, the controller of a cluster whose
// changes are answered once its own copy is durable and commit only when
// the test commits them (broker 1's registration, here): a change answered
// before its commit (leader acks, or one relayed through another node)
// that the next request meets uncommitted.
func laggingBroker(t *testing.T) *Broker {
	t.Helper()
	store := memStore(t, segmenttest.NewMemFS())
	meta := memMeta(t, store, eventlog.Options{Replicated: true, SnapshotBytes: -1})
	meta.Lead(1)
	off, err := meta.Append(&eventlog.BrokerRegistered{BrokerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Commit(off + 1); err != nil {
		t.Fatal(err)
	}
	return memBrokerOn(t, store, meta, func(c *Config) { c.Cluster = &failingCluster{meta: meta} })
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

// TestPartitionsOpenOnceTheHeldMetadataCommits: a cluster node starts
// holding metadata it applies only once committed, and so knows of none
// of its partitions yet; it opens (and recovers) them once what it held is
// applied, and stops waiting when told to. Partitions never on disk are
// left to their first use.
func TestPartitionsOpenOnceTheHeldMetadataCommits(t *testing.T) {
	fs := segmenttest.NewMemFS()
	for _, dir := range []string{"/d/held-0", "/d/held-1"} { // written by the process before
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	store := memStore(t, fs)
	meta := memMeta(t, store, eventlog.Options{Replicated: true, SnapshotBytes: -1})
	meta.Lead(1)
	id := eventlog.NewUUID()
	if _, err := meta.Append(&eventlog.BrokerRegistered{BrokerID: 1}, &eventlog.BrokerRegistered{BrokerID: 2},
		&eventlog.TopicCreated{Name: "held", TopicID: id, PartitionCount: 2, ReplicationFactor: 1},
		&eventlog.PartitionChanged{Topic: "held", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&eventlog.PartitionChanged{Topic: "held", Partition: 1, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2},
		&eventlog.TopicCreated{Name: "unwritten", TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1},
		&eventlog.PartitionChanged{Topic: "unwritten", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}); err != nil {
		t.Fatal(err)
	}
	held, _ := meta.End()
	b := memBrokerOn(t, store, meta, func(c *Config) { c.Cluster = &failingCluster{meta: meta} })

	stop := make(chan struct{})
	close(stop)
	if n := b.OpenPartitionsOnceApplied(held, stop); n != 0 {
		t.Fatalf("told to stop, it opened %d partitions", n)
	}

	opened := make(chan int, 1)
	go func() { opened <- b.OpenPartitionsOnceApplied(held, nil) }()
	select {
	case n := <-opened:
		t.Fatalf("opened %d partitions before the metadata naming them was committed", n)
	case <-time.After(50 * time.Millisecond):
	}
	if err := meta.Commit(held); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-opened:
		if n != 1 {
			t.Fatalf("opened %d partitions once committed, want the 1 this node leads that is on disk", n)
		}
		files := strings.Join(fs.Files(), " ")
		if !strings.Contains(files, "/d/held-0/00000000000000000000.log") || strings.Contains(files, "/d/unwritten-0/") {
			t.Fatalf("after the open: %s", files)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the partitions were not opened once the metadata was committed")
	}
}
