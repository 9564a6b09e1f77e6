package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSIGKILLMidStream kills the broker while an idempotent producer
// streams with acks=all, and restarts it: every acknowledged record is at
// the offset it was acknowledged with, the group's committed offset is
// intact, and the same producer carries on (its retries are not written
// twice, its sequence is accepted).
func TestSIGKILLMidStream(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	node := startNode(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("stream"), kgo.ProducerLinger(0),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "stream"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]int64{} // value → offset
	var failed []error
	inflight := make(chan struct{}, 64)
	produce := func(i int) {
		inflight <- struct{}{}
		prod.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%06d", i)}, func(r *kgo.Record, err error) {
			<-inflight
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			acked[string(r.Value)] = r.Offset
		})
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	// Stream until a few hundred records are acknowledged, commit a group
	// offset, stream a little more, and kill the broker mid-stream.
	next := 0
	for ackedCount() < 300 {
		produce(next)
		next++
	}
	committed := kadm.Offsets{}
	committed.Add(kadm.Offset{Topic: "stream", Partition: 0, At: int64(ackedCount()), LeaderEpoch: -1, Metadata: "mid-stream"})
	if resp, err := adm.CommitOffsets(ctx, "stream-group", committed); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	for range 200 {
		produce(next)
		next++
	}
	node.Process.Signal(syscall.SIGKILL)
	node.Wait()

	// The same producer goes on against the restarted broker; what it had
	// in flight is retried.
	startNode(t, dir, addr)
	for range 200 {
		produce(next)
		next++
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(failed) > 0 {
		t.Fatalf("%d records failed, the first: %v", len(failed), failed[0])
	}
	if len(acked) != next {
		t.Fatalf("%d of %d records acknowledged", len(acked), next)
	}
	mu.Unlock()

	// The log holds each record once, at its acknowledged offset.
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("stream"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	stored := map[string]int64{}
	for len(stored) < next {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume after %d: %v", len(stored), err)
		}
		for _, r := range fs.Records() {
			if at, dup := stored[string(r.Value)]; dup {
				t.Fatalf("%s is stored twice: at %d and %d", r.Value, at, r.Offset)
			}
			stored[string(r.Value)] = r.Offset
		}
	}
	for v, off := range acked {
		if stored[v] != off {
			t.Fatalf("%s was acknowledged at offset %d, stored at %d", v, off, stored[v])
		}
	}
	if end, err := adm.ListEndOffsets(ctx, "stream"); err != nil || end["stream"][0].Offset != int64(next) {
		t.Fatalf("end offset %v (%v), want %d: no gaps, no duplicates", end["stream"][0].Offset, err, next)
	}

	got, err := adm.FetchOffsets(ctx, "stream-group")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := got.Lookup("stream", 0); o.At != committed["stream"][0].At || o.Metadata != "mid-stream" {
		t.Fatalf("committed offset after the crash: %+v, want %d", o, committed["stream"][0].At)
	}
}
