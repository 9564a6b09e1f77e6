package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupOfTwoWithEveryCodec runs the real binary: records produced with
// each of the four codecs are read by a group of two kgo consumers that
// split the partitions, then by the one left when the other leaves.
func TestGroupOfTwoWithEveryCodec(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	startNode(t, dir, addr, "--group-initial-rebalance-delay", "0s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(addr)))
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "codecs"); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		p := newClient(t, kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("codecs"), kgo.ProducerBatchCompression(codec),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		for i := range 50 {
			p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%v-%d-%s", codec, i, make([]byte, 200))}, nil)
			want++
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}

	type member struct {
		cl       *kgo.Client
		mu       sync.Mutex
		assigned int
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	join := func() *member {
		m := &member{}
		track := func(sign int) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				m.mu.Lock()
				m.assigned += sign * len(ps["codecs"])
				m.mu.Unlock()
			}
		}
		m.cl = newClient(t, kgo.SeedBrokers(addr), kgo.ConsumerGroup("codec-readers"), kgo.ConsumeTopics("codecs"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
			kgo.FetchMaxWait(100*time.Millisecond), kgo.OnPartitionsAssigned(track(1)), kgo.OnPartitionsRevoked(track(-1)), kgo.OnPartitionsLost(track(-1)))
		return m
	}
	partitions := func(m *member) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.assigned
	}
	poll := func(ms ...*member) {
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Go(func() {
				c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				fs := m.cl.PollFetches(c)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	until := func(what string, cond func() bool, ms ...*member) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); poll(ms...) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	a, b := join(), join()
	defer a.cl.Close()
	until("the two members to split the four partitions", func() bool { return partitions(a) == 2 && partitions(b) == 2 }, a, b)
	until("every record, whatever its codec, to be read", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == want
	}, a, b)
	b.cl.Close()
	until("the remaining member to take every partition", func() bool { return partitions(a) == 4 }, a)
}

func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
