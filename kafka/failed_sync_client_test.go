package kafka

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestFranzGoProducerThroughAFailedSync: franz-go's idempotent producer
// (up to five requests in flight) sends numbered records while one of the
// partition's syncs fails (losing what it did not make durable). Every
// record it was told is written must be in the partition, and the
// partition must hold them in the order they were sent: the failed
// sync's batches are refused (KAFKA_STORAGE_ERROR) and sent again, and the
// batches after them wait for them.
func TestFranzGoProducerThroughAFailedSync(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	fsys.FailedSyncsLoseWrites()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	b := memBroker(t, fsys, func(c *Config) { c.Port = int32(p) })
	srv := NewServer(b, ServerOptions{}, slog.New(slog.DiscardHandler), nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if _, err := b.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl := must(kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.DefaultProduceTopic("t"),
		kgo.ProducerLinger(0)))
	defer cl.Close()
	const records = 3000
	var mu sync.Mutex
	acked := 0
	for i := range records {
		if i == records/3 {
			// The producer has its id (the metadata log's sync is not the
			// one to fail) and streams: the partition's next sync fails.
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			fsys.FailSyncs(1)
		}
		cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	consumer := must(kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	defer consumer.Close()
	next := 0
	for next < acked {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d records acknowledged, %d read in order: %v", acked, next, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got, _ := strconv.Atoi(string(r.Value)); got != next && !t.Failed() {
				t.Errorf("offset %d holds record %d, want %d: the producer's order was not kept", r.Offset, got, next)
			}
			next++
		})
		if t.Failed() {
			return
		}
	}
	if acked != records {
		t.Logf("%d of %d records acknowledged", acked, records)
	}
}
