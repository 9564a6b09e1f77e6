package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterConfigReachesLeaders: a topic config changed through one node
// (forwarded to the controller) takes effect on partitions open on every
// node that leads one.
func TestClusterConfigReachesLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	tc := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeds := kgo.SeedBrokers(tc.kafka[1], tc.kafka[2], tc.kafka[3])
	cl, err := kgo.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if md, err := adm.BrokerMetadata(ctx); err == nil && md.Controller > 0 && len(md.Brokers) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no controller with three brokers")
		}
	}
	if res, err := adm.CreateTopic(ctx, 3, 1, nil, "cfg"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	prod, err := kgo.NewClient(seeds, kgo.DefaultProduceTopic("cfg"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	big := &kgo.Record{Value: []byte(strings.Repeat("x", 2000))}
	produce := func(p int32) error {
		r := *big
		r.Partition = p
		return prod.ProduceSync(ctx, &r).FirstErr()
	}
	for p := range int32(3) { // opens each partition on its leader
		if err := produce(p); err != nil {
			t.Fatalf("produce 2,000 bytes to partition %d: %v", p, err)
		}
	}

	md, err := adm.Metadata(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int32{}
	for _, p := range md.Topics["cfg"].Partitions {
		leaders[p.Partition] = p.Leader
	}
	if len(leaders) != 3 {
		t.Fatalf("partition leaders: %v", leaders)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("1000")}}, "cfg"); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			err := produce(p)
			if errors.Is(err, kerr.MessageTooLarge) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d, led by node %d, still takes 2,000 bytes after max.message.bytes=1000: %v", p, leaders[p], err)
			}
		}
	}
}
