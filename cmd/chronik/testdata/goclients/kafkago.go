package main

import (
	"context"
	"fmt"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// runKafkaGo: a topic created through kafka-go's client, a writer per codec
// with acks=all, a group reader committing each record, the group's
// offsets read back.
func runKafkaGo(addr, topic, group string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := res.Errors[topic]; err != nil {
		return fmt.Errorf("create: %w", err)
	}
	for i, c := range []compress.Codec{nil, &compress.GzipCodec, &compress.SnappyCodec, &compress.Lz4Codec, &compress.ZstdCodec} {
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, RequiredAcks: kafka.RequireAll, Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond}
		if c != nil {
			w.Compression = kafka.Compression(c.Code())
		}
		var msgs []kafka.Message
		for j := range 6 {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(j)), Value: []byte(fmt.Sprintf("kafka-go-%d-%d", i, j))})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("write with codec %d: %w", i, err)
		}
		w.Close()
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	seen := map[string]bool{}
	for len(seen) < 30 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("fetch after %d: %w", len(seen), err)
		}
		seen[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	r.Close()
	off, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		return fmt.Errorf("offset fetch: %w", err)
	}
	for _, p := range off.Topics[topic] {
		if p.CommittedOffset != 10 {
			return fmt.Errorf("partition %d committed %d", p.Partition, p.CommittedOffset)
		}
	}
	return nil
}
