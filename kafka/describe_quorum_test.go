package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// askQuorum asks cl to describe the quorum of each topic's partition 0.
func askQuorum(ctx context.Context, t *testing.T, cl *kgo.Client, topics ...string) *kmsg.DescribeQuorumResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	for _, name := range topics {
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = name
		rp := kmsg.NewDescribeQuorumRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestDescribeQuorumOfASingleNode: a single node is the quorum's only
// voter and its leader; the metadata log answers under its own name and
// under Kafka's, any other partition is unknown.
func TestDescribeQuorumOfASingleNode(t *testing.T) {
	addr, ctx, adm := brokerAdmin(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "quorum"); err != nil {
		t.Fatal(err)
	}
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp := askQuorum(ctx, t, cl, "__cluster_metadata", "__chronik_metadata", "quorum")
	if len(resp.Topics) != 3 {
		t.Fatalf("%d topics answered", len(resp.Topics))
	}
	for _, rt := range resp.Topics[:2] {
		p := rt.Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID != 1 || p.HighWatermark <= 0 || len(p.CurrentVoters) != 1 || len(p.Observers) != 0 {
			t.Fatalf("%s: %+v", rt.Topic, p)
		}
		if v := p.CurrentVoters[0]; v.ReplicaID != 1 || v.LogEndOffset < p.HighWatermark || v.LastFetchTimestamp != -1 {
			t.Fatalf("%s: the voter %+v", rt.Topic, v)
		}
	}
	if code := resp.Topics[2].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("a data partition: error %d", code)
	}
	if len(resp.Nodes) != 1 || resp.Nodes[0].NodeID != 1 || len(resp.Nodes[0].Listeners) != 1 || resp.Nodes[0].Listeners[0].Port == 0 {
		t.Fatalf("nodes %+v", resp.Nodes)
	}
}
