package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestPooledFramesKeepRecords: produce request frames are reused once the
// request is served, so every record must be in the log exactly as sent
// even when connections race on one partition with frames from the pool,
// with acks=0 (no response to wait for) and with acks=all.
func TestPooledFramesKeepRecords(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if r, err := adm.CreateTopics(ctx, 1, 1, nil, "big"); err != nil || r["big"].Err != nil {
		t.Fatalf("create: %v %v", err, r["big"].Err)
	}

	const producers, perProducer, size = 4, 40, 96 << 10
	value := func(p, i int) []byte {
		v := make([]byte, size)
		binary.BigEndian.PutUint32(v, uint32(p))
		binary.BigEndian.PutUint32(v[4:], uint32(i))
		rng := rand.NewChaCha8([32]byte{byte(p), byte(i)})
		rng.Read(v[8:])
		return v
	}
	var wg sync.WaitGroup
	for p := range producers {
		acks := kgo.AllISRAcks()
		if p%2 == 0 {
			acks = kgo.NoAck()
		}
		cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("big"), kgo.RequiredAcks(acks),
			kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0)))
		defer cl.Close()
		wg.Go(func() {
			for i := range perProducer {
				cl.Produce(ctx, &kgo.Record{Value: value(p, i)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce %d/%d: %v", p, i, err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	defer cons.Close()
	seen := map[[2]int]bool{}
	for len(seen) < producers*perProducer && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != size {
				t.Fatalf("offset %d: %d bytes, want %d", r.Offset, len(r.Value), size)
			}
			p, i := int(binary.BigEndian.Uint32(r.Value)), int(binary.BigEndian.Uint32(r.Value[4:]))
			if p >= producers || i >= perProducer || !bytes.Equal(r.Value, value(p, i)) {
				t.Fatalf("offset %d: a record that was not sent (producer %d, record %d)", r.Offset, p, i)
			}
			if seen[[2]int{p, i}] {
				t.Fatalf("offset %d: record %d of producer %d twice", r.Offset, i, p)
			}
			seen[[2]int{p, i}] = true
		})
	}
	if len(seen) != producers*perProducer {
		t.Fatalf("read %d records, want %d", len(seen), producers*perProducer)
	}
}

// TestAcksZeroWaitsForItsAppends: an acks=0 produce has no response, but
// its frame goes back to the pool when the connection is done with it, so
// the connection must not be done before the batch is in the log. Here
// another request's goroutine holds the partition's appender.
func TestAcksZeroWaitsForItsAppends(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("t", 1, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}); err != nil {
		t.Fatal(err)
	}
	part, code := b.openPartition("t", 0)
	if code != 0 {
		t.Fatalf("open: code %d", code)
	}
	part.appender.mu.Lock()
	part.appender.busy = true // as if another request were appending
	part.appender.mu.Unlock()

	req := kmsg.NewPtrProduceRequest()
	req.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = segmenttest.Values(1, "v")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	wait := produce(b, &reqContext{}, req)
	served := make(chan struct{})
	go func() {
		wait()
		close(served)
	}()
	select {
	case <-served:
		t.Fatal("an acks=0 produce was done before its batch was appended")
	case <-time.After(100 * time.Millisecond):
	}
	part.appender.drain(part, math.MaxInt) // the other request's goroutine goes on
	<-served
	if end := part.log.EndOffset(); end != 1 {
		t.Fatalf("log end %d after the acks=0 produce, want 1", end)
	}
}

// TestFrameSizes: small and very large frames are allocated at their size;
// the others are rounded up to a power of two and reused.
func TestFrameSizes(t *testing.T) {
	for _, tc := range []struct{ size, wantCap int }{
		{100, 100},
		{minPooledFrame - 1, minPooledFrame - 1},
		{minPooledFrame, minPooledFrame},
		{minPooledFrame + 1, 2 * minPooledFrame},
		{3 << 20, 4 << 20},
		{maxPooledFrame, maxPooledFrame},
		{maxPooledFrame + 1, maxPooledFrame + 1},
	} {
		f := getFrame(tc.size)
		if len(f) != tc.size || cap(f) != tc.wantCap {
			t.Errorf("getFrame(%d): len %d cap %d, want cap %d", tc.size, len(f), cap(f), tc.wantCap)
		}
		putFrame(f)
	}
}
