package kafka

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fillPartitions creates topic with parts partitions and produces n
// records of size bytes to each, in uncompressed batches of at most 32 KiB.
func fillPartitions(t *testing.T, addr, topic string, parts int32, n, size int) {
	t.Helper()
	ctx := context.Background()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(32<<10)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for i := range n * int(parts) {
		v := make([]byte, size)
		rand.Read(v)
		cl.Produce(ctx, &kgo.Record{Value: v, Partition: int32(i) % parts}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFetchMemoryIsBounded: fetches hold at most the broker's fetch
// memory, beyond it only the first batch of a response that has nothing
// else; with none left a fetch waits as if there were no data and is woken
// when a response gives bytes back; every byte comes back.
func TestFetchMemoryIsBounded(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	fillPartitions(t, addr, "wide", 4, 1024, 1000) // about 1 MiB a partition
	const budget, batchMax = 256 << 10, 40 << 10
	b.fetchMem = newFetchMemory(budget)

	request := func(minBytes int32, wait time.Duration) *kmsg.FetchRequest {
		req := fetchRequest("wide", []int32{0, 1, 2, 3}, 1<<20)
		req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 50<<20, minBytes, int32(wait.Milliseconds())
		return req
	}
	recordBytes := func(resp *kmsg.FetchResponse) int64 {
		var n int64
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
				}
				n += int64(len(rp.RecordBatches))
			}
		}
		return n
	}

	// Responses that are not written yet keep what they read.
	var held []int64
	var total int64
	for b.fetchMem.left() > 0 {
		if len(held) == 20 {
			t.Fatalf("20 held responses of %d bytes did not use up %d bytes", total, budget)
		}
		req := request(0, 0)
		resp, n := fetch(b, req, b.sessions.plan(req))
		if got := recordBytes(resp); got != n {
			t.Fatalf("a response of %d record bytes holds %d", got, n)
		}
		held = append(held, n)
		total += n
		if total > budget+int64(len(held))*batchMax {
			t.Fatalf("%d responses hold %d bytes, beyond %d and a batch each", len(held), total, budget)
		}
	}
	if held[0] == 0 {
		t.Fatal("the first fetch read nothing")
	}

	// None left: an offset out of range is still told at once...
	bad := request(1, 10*time.Second)
	bad.Topics[0].Partitions[0].FetchOffset = 1 << 40
	if resp, _ := fetch(b, bad, b.sessions.plan(bad)); resp.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("a fetch out of range with no memory left: error %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	// ...and a fetch waits, and is woken when bytes come back.
	done := make(chan int64, 1)
	go func() {
		req := request(1, 10*time.Second)
		resp, n := fetch(b, req, b.sessions.plan(req))
		if recordBytes(resp) == 0 {
			n = -1
		}
		done <- n
	}()
	select {
	case n := <-done:
		t.Fatalf("a fetch with no memory left answered (holding %d bytes)", n)
	case <-time.After(300 * time.Millisecond):
	}
	b.fetchMem.give(held[0])
	start := time.Now()
	select {
	case n := <-done:
		if n <= 0 {
			t.Fatal("the woken fetch read nothing")
		}
		held[0] = n
	case <-time.After(5 * time.Second):
		t.Fatal("a fetch waiting for memory was not woken when some came back")
	}
	t.Logf("woken %v after memory came back", time.Since(start))
	for _, n := range held {
		b.fetchMem.give(n)
	}
	if left := b.fetchMem.left(); left != budget {
		t.Fatalf("%d bytes left of %d once every response gave its bytes back", left, budget)
	}
}

// TestConsumingWithLittleFetchMemory: two consumers read everything
// through a fetch memory smaller than what they ask for, and every byte
// comes back once their responses are written.
func TestConsumingWithLittleFetchMemory(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	fillPartitions(t, addr, "wide", 4, 512, 1000)
	const budget = 64 << 10
	b.fetchMem = newFetchMemory(budget)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("wide"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
		wg.Go(func() {
			defer cl.Close()
			got := 0
			for got < 2048 && ctx.Err() == nil {
				got += cl.PollFetches(ctx).NumRecords()
			}
			if got < 2048 {
				t.Errorf("consumed %d of 2048 records", got)
			}
		})
	}
	wg.Wait()
	for deadline := time.Now().Add(10 * time.Second); b.fetchMem.left() != budget; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of fetch memory left of %d after the consumers left", b.fetchMem.left(), budget)
		}
	}
}
