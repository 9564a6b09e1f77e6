package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBrokerThatIsNotAVoter: node 4 of a cluster whose voters are 1, 2
// and 3 is one of its brokers: it names a voter as the controller, passes
// a topic's creation on to it, leads some of the topic's partitions and
// serves them to a client that knows only node 4; when the controller is
// killed, node 4 passes creations on to the next one. On both paths.
func TestBrokerThatIsNotAVoter(t *testing.T) {
	onBothPaths(t, testBrokerThatIsNotAVoter)
}

func testBrokerThatIsNotAVoter(t *testing.T, extra ...string) {
	if testing.Short() {
		t.Skip("runs four processes")
	}
	tc := startCluster(t, extra...)
	tc.addBroker()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := tc.client(4)
	controller := 0
	for deadline := time.Now().Add(20 * time.Second); controller == 0; time.Sleep(50 * time.Millisecond) {
		if md, err := tc.metadata(ctx, cl, 4); err == nil && md.ControllerID >= 1 && md.ControllerID <= 3 && len(md.Brokers) == 4 {
			controller = int(md.ControllerID)
		}
		if time.Now().After(deadline) {
			t.Fatal("node 4 does not name a controller among the voters with four brokers")
		}
	}

	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "spread", 8, 1
	req.Topics = append(req.Topics, topic)
	r, err := cl.Broker(4).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
		t.Fatalf("create through node 4: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		led := 0
		if md, err := tc.metadata(ctx, cl, 4); err == nil {
			for _, mt := range md.Topics {
				for _, p := range mt.Partitions {
					if mt.Topic != nil && *mt.Topic == "spread" && p.Leader == 4 {
						led++
					}
				}
			}
		}
		if led > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 4 leads none of the topic's 8 partitions")
		}
	}

	producer, err := kgo.NewClient(kgo.SeedBrokers(tc.kafka[4]), kgo.DefaultProduceTopic("spread"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for i := range 100 {
		if err := producer.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("record-", i))).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(tc.kafka[4]), kgo.ConsumeTopics("spread"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	for len(seen) < 100 && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if len(seen) != 100 {
		t.Fatalf("read back %d of 100 records", len(seen))
	}

	// DescribeQuorum sent to node 4 reaches the controller: the voters, and
	// node 4 as an observer, with what each has acknowledged.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic, rt.Partitions = "__cluster_metadata", []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
		req.Topics = append(req.Topics, rt)
		r, err := cl.Broker(4).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		p := r.(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]
		ok := p.ErrorCode == 0 && p.LeaderID == int32(controller) && len(p.CurrentVoters) == 3 && len(p.Observers) == 1 && p.Observers[0].ReplicaID == 4 && p.HighWatermark > 0
		for _, rs := range append(p.CurrentVoters, p.Observers...) {
			ok = ok && rs.LogEndOffset == p.HighWatermark && (rs.ReplicaID == p.LeaderID || rs.LastFetchTimestamp > 0)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DescribeQuorum through node 4 (controller %d): %+v", controller, p)
		}
	}

	// The controller is killed: a creation sent to node 4 reaches the next.
	tc.cmds[controller].Process.Signal(syscall.SIGKILL)
	tc.cmds[controller].Wait()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := createThrough(ctx, cl, 4, "after-failover")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the controller was killed, a create through node 4: %v", err)
		}
	}
	md, err := tc.metadata(ctx, cl, 4)
	if err != nil {
		t.Fatal(err)
	}
	if md.ControllerID == int32(controller) || md.ControllerID < 1 || md.ControllerID > 3 {
		t.Fatalf("after the failover node 4 names controller %d", md.ControllerID)
	}
}
