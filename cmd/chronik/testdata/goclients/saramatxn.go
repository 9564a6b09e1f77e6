package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

// saramaTransactions produces with a transactional producer to a topic of
// its own: a committed transaction, an aborted one, then offsets committed
// in a transaction (AddOffsetsToTxn, TxnOffsetCommit); a read_committed
// consumer must read the committed records only, and the group the
// transaction's offsets.
func saramaTransactions(cfg *sarama.Config, admin sarama.ClusterAdmin, addr, topic string) error {
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	tcfg := *cfg
	tcfg.Producer.Transaction.ID = "sarama-txn-" + topic
	tcfg.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer([]string{addr}, &tcfg)
	if err != nil {
		return fmt.Errorf("transactional producer: %w", err)
	}
	defer producer.Close()
	inTxn := func(prefix string, n int, commit bool) error {
		if err := producer.BeginTxn(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for i := range n {
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf("%s%d", prefix, i))}); err != nil {
				return fmt.Errorf("produce in a transaction: %w", err)
			}
		}
		if commit {
			return producer.CommitTxn()
		}
		return producer.AbortTxn()
	}
	if err := inTxn("committed-", 3, true); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := inTxn("aborted-", 2, false); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	// Offsets in a transaction: the group's offset for the partition.
	if err := producer.BeginTxn(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := producer.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{topic: {{Partition: 0, Offset: 3}}}, "sarama-txn-group"); err != nil {
		return fmt.Errorf("offsets in a transaction: %w", err)
	}
	if err := producer.CommitTxn(); err != nil {
		return fmt.Errorf("commit of offsets: %w", err)
	}
	offsets, err := admin.ListConsumerGroupOffsets("sarama-txn-group", map[string][]int32{topic: {0}})
	if err != nil {
		return fmt.Errorf("list group offsets: %w", err)
	}
	if b := offsets.GetBlock(topic, 0); b == nil || b.Offset != 3 {
		return fmt.Errorf("offset committed in a transaction: %+v, want 3", b)
	}

	ccfg := *cfg
	ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
	consumer, err := sarama.NewConsumer([]string{addr}, &ccfg)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer pc.Close()
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case <-timeout:
			return fmt.Errorf("read_committed: read %v in 5 s, want 3 committed records", got)
		}
	}
	select {
	case m := <-pc.Messages():
		return fmt.Errorf("read_committed: read %q after the committed records", m.Value)
	case <-time.After(500 * time.Millisecond):
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[committed-0 committed-1 committed-2]" {
		return fmt.Errorf("read_committed: read %v", got)
	}
	return nil
}
