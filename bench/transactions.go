package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/internal/latency"
)

// Transactions runs count transactions from one transactional producer,
// one after another, each a record of size bytes to each of the topic's
// partitions (created with partitions partitions) and a commit; it times
// each transaction from its first record to its commit's answer.
func Transactions(ctx context.Context, addr, topic string, partitions int32, count, size int, p *Progress) (*Result, error) {
	if count < 1 || count > maxOps || partitions < 1 || partitions > 10_000 {
		return nil, errors.New("bench: transactions need 1 <= count <= 20,000,000 and 1 to 10,000 partitions")
	}
	if err := createTopic(ctx, addr, topic, partitions); err != nil {
		return nil, err
	}
	cl, err := client(addr, kgo.TransactionalID("bench-"+topic), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	value := payload(size)
	recs := make([]*kgo.Record, partitions)
	r := &Result{Workload: fmt.Sprintf("transactions, each a record to each of %d partition(s) and a commit", partitions), lat: latency.New(count)}
	start := time.Now()
	for range count {
		t0 := time.Now()
		if err := cl.BeginTransaction(); err != nil {
			return nil, err
		}
		for i := range recs {
			recs[i] = &kgo.Record{Value: value, Partition: int32(i)}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return nil, fmt.Errorf("bench: produce in a transaction: %w", err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return nil, fmt.Errorf("bench: commit: %w", err)
		}
		r.observe(time.Since(t0))
		r.Ops++
		r.Bytes += int64(partitions) * int64(size)
		p.add(1, int64(partitions)*int64(size))
	}
	r.Elapsed = time.Since(start)
	return r, nil
}
