package kafka

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestWaitAny: a wait over many channels ends when any one of them is
// closed, also beyond the cases one select takes, and times out when none
// is.
func TestWaitAny(t *testing.T) {
	for _, n := range []int{1, 1000, maxSelect + 10} {
		chans := make([]chan struct{}, n)
		ro := make([]<-chan struct{}, n)
		for i := range chans {
			chans[i] = make(chan struct{})
			ro[i] = chans[i]
		}
		if waitAny(ro, 20*time.Millisecond) {
			t.Fatalf("%d channels: woken with none closed", n)
		}
		for _, i := range []int{0, n - 1} {
			c := make(chan struct{})
			ro[i] = c
			go func() { time.Sleep(10 * time.Millisecond); close(c) }()
			start := time.Now()
			if !waitAny(ro, 10*time.Second) || time.Since(start) > 5*time.Second {
				t.Fatalf("%d channels: not woken by closing channel %d", n, i)
			}
			ro[i] = chans[i]
		}
	}
}

// TestLongPollOfManyPartitionsParksOneGoroutine: a fetch waiting for data
// in 500 partitions holds no goroutine per partition.
func TestLongPollOfManyPartitionsParksOneGoroutine(t *testing.T) {
	_, addr := brokerForTest(t, t.TempDir())
	ctx := context.Background()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 500, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MinBytes, req.MaxBytes = 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "wide", idOf(t, cl, "wide")
	for p := range int32(500) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes = p, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = []kmsg.FetchRequestTopic{ft}
	if _, err := req.RequestWith(ctx, cl); err != nil { // opens the partitions
		t.Fatal(err)
	}
	req.MaxWaitMillis = 1500
	before := runtime.NumGoroutine()
	done := make(chan error, 1)
	go func() {
		_, err := req.RequestWith(ctx, cl)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	during := runtime.NumGoroutine()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if during-before > 20 {
		t.Fatalf("a long poll of 500 partitions runs %d more goroutines", during-before)
	}
}

// TestPooledFetchBuffersStayApart: fetch buffers come from a pool and go
// back once their response is framed; with consumers reading large
// batches of several partitions at once, every record must come back with
// its own partition's and offset's bytes (a buffer given back too early
// would show another fetch's records).
func TestPooledFetchBuffersStayApart(t *testing.T) {
	_, addr := brokerForTest(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("pooled"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20)))
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 4, 1, nil, "pooled"); err != nil {
		t.Fatal(err)
	}
	value := func(p int32, i int) []byte {
		v := bytes.Repeat([]byte{byte('a' + p)}, 20<<10)
		copy(v, fmt.Sprintf("p%d-%d-", p, i))
		return v
	}
	const perPartition = 150
	for i := range perPartition {
		for p := range int32(4) {
			prod.Produce(ctx, &kgo.Record{Partition: p, Value: value(p, i)}, nil)
		}
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("pooled"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxPartitionBytes(1<<20), kgo.FetchMaxBytes(4<<20)))
			defer cons.Close()
			seen := 0
			for seen < 4*perPartition && ctx.Err() == nil {
				cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					if want := value(r.Partition, int(r.Offset)); !bytes.Equal(r.Value, want) {
						t.Errorf("consumer %d: %d@%d holds %q..., want %q...", c, r.Partition, r.Offset, r.Value[:12], want[:12])
					}
					seen++
				})
			}
			if seen != 4*perPartition {
				t.Errorf("consumer %d read %d of %d records", c, seen, 4*perPartition)
			}
		})
	}
	wg.Wait()
}

// TestFetchResponseIsBounded: a fetch asking for 2 GiB gets at most
// maxFetchBytes of records (less than a batch under it), from several
// partitions or from one, as Kafka's fetch.max.bytes bounds it: the broker
// never reads what a client asks without a limit.
func TestFetchResponseIsBounded(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("big", 4, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "67108864"}}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1<<20-200)
	batch := segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: value}}), 1, segment.CodecNone, 0)
	// Partitions 0-2 hold 20 MiB each, partition 3 60 MiB: beyond
	// maxFetchBytes together and alone.
	for p, n := range []int{20, 20, 20, 60} {
		part, code := b.openPartition("big", int32(p))
		if code != 0 {
			t.Fatalf("open: code %d", code)
		}
		for range n {
			a, err := part.log.Append(slices.Clone(batch), 0, -1)
			if err == nil {
				err = a.Wait()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, parts := range [][]int32{{0, 1, 2}, {3}} {
		req := fetchRequest("big", parts, math.MaxInt32)
		req.MaxBytes = math.MaxInt32
		resp, _ := fetch(b, req, b.sessions.plan(req))
		total := 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
				}
				total += len(rp.RecordBatches)
			}
		}
		if total > maxFetchBytes || total < maxFetchBytes-len(batch) {
			t.Fatalf("a fetch of 2 GiB from partitions %v got %d bytes of records, want just under %d", parts, total, maxFetchBytes)
		}
	}
}

// fetchRequest is a Fetch v12 without a session, as a consumer sends it,
// for the given partitions of topic, each with partMax bytes at most.
func fetchRequest(topic string, parts []int32, partMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.SessionEpoch = 12, -1, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}
