package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
)

// Limits keep a run bounded in memory (a latency per operation).
const maxOps = 20_000_000

// client connects to addr. Producers send their batches uncompressed: the
// records are random bytes (see payload), so the broker stores and serves
// every byte produced and no codec's speed is measured in its place.
func client(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.MetadataMinAge(10 * time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
}

// payload returns size random bytes, a record value that no codec shrinks.
// Values of zeros made kgo's snappy turn 1 KiB records into 56 bytes each,
// and its decoding dominated (and halved, depending on the run) the
// consume rate.
func payload(size int) []byte {
	v := make([]byte, size)
	rand.Read(v)
	return v
}

// CreateTopics creates count topics named prefix-N with one partition,
// perRequest to a CreateTopics request, one request at a time; it times
// each request.
func CreateTopics(ctx context.Context, addr, prefix string, count, perRequest int, p *Progress) (*Result, error) {
	if count < 1 || count > maxOps || perRequest < 1 {
		return nil, errors.New("bench: create-topics needs 1 <= count <= 20,000,000 and at least 1 topic per request")
	}
	cl, err := client(addr)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r := &Result{Workload: fmt.Sprintf("create-topics (%d per request)", perRequest), lat: latency.New(count / perRequest)}
	start := time.Now()
	for done := 0; done < count; {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30_000
		for i := done; i < min(done+perRequest, count); i++ {
			t := kmsg.NewCreateTopicsRequestTopic()
			t.Topic, t.NumPartitions, t.ReplicationFactor = fmt.Sprintf("%s-%d", prefix, i), 1, 1
			req.Topics = append(req.Topics, t)
		}
		t0 := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		r.observe(time.Since(t0))
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return nil, fmt.Errorf("bench: create %s: %w", t.Topic, err)
			}
		}
		done += len(req.Topics)
		r.Ops += int64(len(req.Topics))
		p.add(int64(len(req.Topics)), 0)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// FirstMessages creates count topics one by one and produces one message to
// each (acks=all) as soon as it exists, timing create + first ack. Both
// requests go straight to the broker: what is timed is the broker, not a
// client's metadata refresh.
func FirstMessages(ctx context.Context, addr, prefix string, count int, p *Progress) (*Result, error) {
	if count < 1 || count > maxOps {
		return nil, errors.New("bench: first-message needs 1 <= count <= 20,000,000")
	}
	cl, err := client(addr)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if len(md.Brokers) != 1 {
		return nil, fmt.Errorf("bench: first-message needs a single broker, found %d", len(md.Brokers))
	}
	broker := cl.Broker(int(md.Brokers[0].NodeID))
	value := payload(100)
	batch := segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: value}}), 1, segment.CodecNone, time.Now().UnixMilli())
	r := &Result{Workload: "new topic + first acknowledged message", lat: latency.New(count)}
	start := time.Now()
	for i := range count {
		topic := fmt.Sprintf("%s-%d", prefix, i)
		t0 := time.Now()
		create := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, 1, 1
		create.Topics = append(create.Topics, ct)
		created, err := create.RequestWith(ctx, broker)
		if err != nil {
			return nil, err
		}
		if err := kerr.ErrorForCode(created.Topics[0].ErrorCode); err != nil {
			return nil, fmt.Errorf("bench: create %s: %w", topic, err)
		}
		produce := kmsg.NewPtrProduceRequest()
		produce.Acks, produce.TimeoutMillis = -1, 30_000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic, pt.TopicID = topic, created.Topics[0].TopicID
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = batch
		pt.Partitions = append(pt.Partitions, pp)
		produce.Topics = append(produce.Topics, pt)
		produced, err := produce.RequestWith(ctx, broker)
		if err != nil {
			return nil, err
		}
		if err := kerr.ErrorForCode(produced.Topics[0].Partitions[0].ErrorCode); err != nil {
			return nil, fmt.Errorf("bench: first message to %s: %w", topic, err)
		}
		r.observe(time.Since(t0))
		r.Ops++
		r.Bytes += int64(len(value))
		p.add(1, int64(len(value)))
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// SingleMessages produces count messages to one topic, one at a time, each
// waiting for its acknowledgement (acks=all), timing each.
func SingleMessages(ctx context.Context, addr, topic string, count, size int, p *Progress) (*Result, error) {
	if count < 1 || count > maxOps {
		return nil, errors.New("bench: single messages need 1 <= count <= 20,000,000")
	}
	cl, err := client(addr, kgo.ProducerLinger(0), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	value := payload(size)
	// The first message creates the topic and finds its leader: not timed.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		return nil, err
	}
	r := &Result{Workload: "single messages, one at a time", lat: latency.New(count)}
	start := time.Now()
	for range count {
		t0 := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			return nil, err
		}
		r.observe(time.Since(t0))
		r.Ops++
		r.Bytes += int64(size)
		p.add(1, int64(size))
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// Produce sends count records of size bytes to topic (created with
// partitions partitions) from one batching client with acks=all, as fast as
// the broker acknowledges them; it times each record from send to ack.
func Produce(ctx context.Context, addr, topic string, partitions int32, count, size int, p *Progress) (*Result, error) {
	if count < 1 || count > maxOps || size < 0 || size > 1<<20 {
		return nil, errors.New("bench: produce needs 1 <= records <= 20,000,000 and a record size up to 1 MiB")
	}
	if err := createTopic(ctx, addr, topic, partitions); err != nil {
		return nil, err
	}
	cl, err := client(addr, kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(50_000),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r := &Result{Workload: fmt.Sprintf("produce %d B records, acks=all", size), lat: latency.New(count)}
	value := payload(size)
	var failed error
	var mu sync.Mutex
	start := time.Now()
	for range count {
		t0 := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
				return
			}
			r.observe(time.Since(t0))
			p.add(1, int64(size))
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	r.Elapsed = time.Since(start)
	if failed != nil {
		return nil, fmt.Errorf("bench: produce: %w", failed)
	}
	r.Ops, r.Bytes = int64(count), int64(count)*int64(size)
	return r, nil
}

// ConcurrentProducers runs producers clients, each sending perProducer
// records one at a time and waiting for each acknowledgement (acks=all).
func ConcurrentProducers(ctx context.Context, addr, topic string, producers, perProducer, size int, p *Progress) (*Result, error) {
	if producers < 1 || producers > 10_000 || perProducer < 1 || producers*perProducer > maxOps {
		return nil, errors.New("bench: concurrent producers need 1 to 10,000 producers and at most 20,000,000 records")
	}
	if err := createTopic(ctx, addr, topic, 1); err != nil {
		return nil, err
	}
	clients := make([]*kgo.Client, producers)
	for i := range clients {
		cl, err := client(addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		// Connect and learn the leader before the clock starts.
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
			return nil, err
		}
		clients[i] = cl
	}
	r := &Result{Workload: fmt.Sprintf("%d producers, one record at a time, acks=all", producers), lat: latency.New(producers * perProducer)}
	value := payload(size)
	errs := make(chan error, producers)
	start := time.Now()
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() {
			for range perProducer {
				t0 := time.Now()
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
					errs <- err
					return
				}
				r.observe(time.Since(t0))
				p.add(1, int64(size))
			}
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("bench: produce: %w", err)
	}
	r.Ops, r.Bytes = int64(producers*perProducer), int64(producers*perProducer*size)
	return r, nil
}

// Consume reads count records of topic from the start with one client and
// measures the rate. The records must be there (see Produce). The client
// fetches with kgo's default sizes (1 MiB per partition, 50 MiB per
// response), as consumers do: with 16 MiB per partition the rate of both
// chronik and kfake swung eightfold between runs, the garbage collector
// stalling on the client's copies of 64 MiB responses.
func Consume(ctx context.Context, addr, topic string, count int, p *Progress) (*Result, error) {
	cl, err := client(addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r := &Result{Workload: "consume"}
	start := time.Now()
	for r.Ops < int64(count) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			return nil, fmt.Errorf("bench: consume after %d records: %w", r.Ops, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			r.Ops++
			r.Bytes += int64(len(rec.Value))
		})
		p.add(int64(fs.NumRecords()), 0)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

func createTopic(ctx context.Context, addr, topic string, partitions int32) error {
	cl, err := client(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("bench: create %s: %w", topic, err)
	}
	return nil
}
