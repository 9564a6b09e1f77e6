package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// runSarama: cluster admin (create, list, describe configs and cluster,
// delete records, describe log dirs, create partitions, delete), an
// idempotent synchronous producer with
// acks=all per codec, a consumer group of two members committing, the
// group's offsets, listing and description read back. version is the
// Kafka version sarama is told the broker runs, which picks the request
// versions it sends ("" is sarama's default); brokers is how many the
// cluster has. Then transactions (saramaTransactions).
func runSarama(addr, topic, group, version string, brokers int) error {
	cfg := sarama.NewConfig()
	cfg.ClientID = "sarama-test"
	if version != "" {
		v, err := sarama.ParseKafkaVersion(version)
		if err != nil {
			return err
		}
		cfg.Version = v
	}
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Metadata.AllowAutoTopicCreation = false

	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer admin.Close()
	retention := "3600000"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err == nil {
		return fmt.Errorf("creating %s twice succeeded", topic)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != parts {
		return fmt.Errorf("list topics: %s is %+v", topic, topics[topic])
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return fmt.Errorf("describe config: %w", err)
	}
	if !hasConfig(entries, "retention.ms", retention) {
		return fmt.Errorf("describe config: retention.ms is not %s in %+v", retention, entries)
	}
	brokerEntries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "1"})
	if err != nil {
		return fmt.Errorf("describe broker config: %w", err)
	}
	if !hasConfig(brokerEntries, "broker.id", "1") {
		return fmt.Errorf("describe broker config: broker.id is not 1 in %+v", brokerEntries)
	}
	described, controller, err := admin.DescribeCluster()
	if err != nil || len(described) != brokers || controller < 1 || int(controller) > brokers {
		return fmt.Errorf("describe cluster: %v brokers (want %d), controller %d, %v", len(described), brokers, controller, err)
	}

	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.Close()
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	if !cfg.Version.IsAtLeast(sarama.V2_1_0_0) {
		codecs[4] = sarama.CompressionLZ4 // zstd needs Produce v7
	}
	for p := range int32(parts) {
		cfg := *cfg
		cfg.Producer.Compression = codecs[p]
		producer, err := sarama.NewSyncProducer([]string{addr}, &cfg)
		if err != nil {
			return fmt.Errorf("producer: %w", err)
		}
		for i := range perPartition {
			part, off, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(fmt.Sprintf("sarama-%d-%d", p, i))})
			if err != nil {
				return fmt.Errorf("produce with %v: %w", cfg.Producer.Compression, err)
			}
			if part != p || off != int64(i) {
				return fmt.Errorf("produce with %v: record %d went to %d@%d", cfg.Producer.Compression, i, part, off)
			}
		}
		producer.Close()
	}
	for p := range int32(parts) {
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || newest != perPartition {
			return fmt.Errorf("partition %d: newest offset %d, %v", p, newest, err)
		}
	}

	// Two members of one group consume everything, committing as they go.
	var mu sync.Mutex
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	var groups []sarama.ConsumerGroup
	for range 2 {
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			return fmt.Errorf("consumer group: %w", err)
		}
		groups = append(groups, cg)
		h := &handler{mu: &mu, seen: seen, want: parts * perPartition, done: cancel}
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, cg := range groups {
		if err := cg.Close(); err != nil {
			return fmt.Errorf("leave group: %w", err)
		}
	}
	close(errs)
	for err := range errs {
		return fmt.Errorf("consume: %w", err)
	}
	if len(seen) != parts*perPartition {
		return fmt.Errorf("consumed %d of %d records", len(seen), parts*perPartition)
	}

	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3, 4}})
	if err != nil {
		return fmt.Errorf("list group offsets: %w", err)
	}
	for p := range int32(parts) {
		if b := offsets.GetBlock(topic, p); b == nil || b.Offset != perPartition {
			return fmt.Errorf("partition %d: committed %+v, want %d", p, b, perPartition)
		}
	}
	listed, err := admin.ListConsumerGroups()
	if err != nil || listed[group] != "consumer" {
		return fmt.Errorf("list groups: %v, %v", listed, err)
	}
	desc, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].State != "Empty" {
		return fmt.Errorf("describe groups: %s, %v", describe(desc), err)
	}
	if !cfg.Version.IsAtLeast(sarama.V1_1_0_0) {
		// DeleteGroups came with Kafka 1.1: sarama refuses it before.
	} else if err := admin.DeleteConsumerGroup(group); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 5}); err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	if oldest, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || oldest != 5 {
		return fmt.Errorf("oldest offset after deleting records before 5: %d, %v", oldest, err)
	}
	if cfg.Version.IsAtLeast(sarama.V1_0_0_0) { // DescribeLogDirs came with Kafka 1.0
		leader, err := client.Leader(topic, 1) // the broker holding partition 1
		if err != nil {
			return fmt.Errorf("leader of %s-1: %w", topic, err)
		}
		id := leader.ID()
		dirs, err := admin.DescribeLogDirs([]int32{id})
		if err != nil || len(dirs[id]) != 1 || dirs[id][0].ErrorCode != sarama.ErrNoError {
			return fmt.Errorf("describe log dirs: %+v, %v", dirs, err)
		}
		size := int64(-1)
		for _, t := range dirs[id][0].Topics {
			for _, p := range t.Partitions {
				if t.Topic == topic && p.PartitionID == 1 {
					size = p.Size
				}
			}
		}
		if size <= 0 {
			return fmt.Errorf("describe log dirs: %s-1 has size %d", topic, size)
		}
	}
	if !cfg.Version.IsAtLeast(sarama.V1_0_0_0) {
		// CreatePartitions came with Kafka 1.0.
	} else if err := admin.CreatePartitions(topic, 6, nil, false); err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	if err := saramaTransactions(cfg, admin, addr, topic+"-txn"); err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	return nil
}

// parts is the topic's partition count: one per codec.
const (
	parts        = 5
	perPartition = 10
)

func hasConfig(entries []sarama.ConfigEntry, name, value string) bool {
	for _, e := range entries {
		if e.Name == name {
			return e.Value == value
		}
	}
	return false
}

// handler marks every record of its claims, and once the group has seen
// them all commits and ends the consumption.
type handler struct {
	mu   *sync.Mutex
	seen map[string]bool
	want int
	done func()
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		s.MarkMessage(msg, "")
		h.mu.Lock()
		h.seen[string(msg.Value)] = true
		all := len(h.seen) == h.want
		h.mu.Unlock()
		if all {
			s.Commit()
			h.done()
		}
	}
	return nil
}

func describe(gs []*sarama.GroupDescription) string {
	s := ""
	for _, g := range gs {
		s += fmt.Sprintf("%+v ", *g)
	}
	return s
}
