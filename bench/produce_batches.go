package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
)

// ProduceBatches is Produce without a client library's work per record:
// the records are encoded once, into a batch of up to 1 MiB for each of
// topic's partitions, and one Produce request carrying all of them
// (acks=all, no producer id) is written again and again on one
// connection, up to produceInflight requests unanswered, as fast as the
// broker acknowledges them. The broker still receives, checks, stores and
// syncs every batch (it assigns the offsets), but the client's CPU goes to
// writing the bytes and reading the answers only: on 2 vCPUs shared with
// the broker, what is left measures the broker's storage path against the
// disk, where kgo's encoding took half of the CPU. count is rounded up to
// whole requests; the latency is each request's, from its write to its
// answer.
func ProduceBatches(ctx context.Context, addr, topic string, partitions int32, count, size int, p *Progress) (*Result, error) {
	if count < 1 || count > maxOps || size < 1 || size > 512<<10 || partitions < 1 || partitions > 64 {
		return nil, errors.New("bench: produce-batches needs 1 <= records <= 20,000,000, a record size of 1 B to 512 KiB and 1 to 64 partitions")
	}
	if err := createTopic(ctx, addr, topic, partitions); err != nil {
		return nil, err
	}
	frame, perRequest := produceRequest(topic, partitions, size)
	requests := (count + perRequest - 1) / perRequest
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	r := &Result{Workload: fmt.Sprintf("produce %d B records in pre-encoded batches, acks=all", size), lat: latency.New(requests)}
	sent := make(chan time.Time, produceInflight) // a token per request unanswered
	readErr := make(chan error, 1)
	start := time.Now()
	go func() {
		readErr <- readProduceAnswers(bufio.NewReaderSize(conn, 64<<10), requests, sent, func(t time.Time) {
			r.observe(time.Since(t))
			p.add(int64(perRequest), int64(perRequest*size))
		})
	}()
	for i := range requests {
		select {
		case sent <- time.Now():
		case err := <-readErr:
			return nil, fmt.Errorf("bench: produce-batches: %w", err)
		}
		binary.BigEndian.PutUint32(frame[8:], uint32(i)) // correlation id
		if _, err := conn.Write(frame); err != nil {
			return nil, fmt.Errorf("bench: produce-batches: %w", err)
		}
	}
	if err := <-readErr; err != nil {
		return nil, fmt.Errorf("bench: produce-batches: %w", err)
	}
	r.Elapsed = time.Since(start)
	r.Ops, r.Bytes = int64(requests*perRequest), int64(requests*perRequest*size)
	return r, nil
}

// produceInflight is how many requests ProduceBatches keeps unanswered:
// kgo's idempotent producer keeps up to 5.
const produceInflight = 5

// produceRequest returns a Produce request frame (size prefix included,
// correlation id 0) with a batch of random records of size bytes for each
// partition of topic, and how many records it carries in all.
func produceRequest(topic string, partitions int32, size int) ([]byte, int) {
	value := payload(size)
	var section []byte
	n := 0
	for {
		rec := kmsg.Record{OffsetDelta: int32(n), Value: value}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // the Length varint of 0 is one byte
		next := rec.AppendTo(section)
		if n > 0 && segment.BatchHeaderSize+len(next) > 1<<20 {
			break
		}
		section, n = next, n+1
	}
	batch := segment.BuildBatch(section, n, segment.CodecNone, time.Now().UnixMilli())
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 30_000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	for i := range partitions {
		pt := kmsg.NewProduceRequestTopicPartition()
		pt.Partition, pt.Records = i, batch
		t.Partitions = append(t.Partitions, pt)
	}
	req.Topics = append(req.Topics, t)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("chronik-bench")).AppendRequest(nil, req, 0)
	return frame, n * int(partitions)
}

// readProduceAnswers reads n Produce v9 responses, in order, and fails on
// the first partition error; each answer takes a token from sent and
// passes its send time to done.
func readProduceAnswers(r *bufio.Reader, n int, sent <-chan time.Time, done func(time.Time)) error {
	var size [4]byte
	var body []byte
	for i := range n {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return err
		}
		m := binary.BigEndian.Uint32(size[:])
		if m < 5 || m > 1<<20 {
			return fmt.Errorf("a response of %d bytes", m)
		}
		if cap(body) < int(m) {
			body = make([]byte, m)
		}
		body = body[:m]
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		if corr := binary.BigEndian.Uint32(body); corr != uint32(i) {
			return fmt.Errorf("response %d came with correlation id %d", i, corr)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		// Flexible: the response header's tags (none) follow the
		// correlation id.
		if err := resp.ReadFrom(body[5:]); err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, pt := range t.Partitions {
				if err := kerr.ErrorForCode(pt.ErrorCode); err != nil {
					return fmt.Errorf("%s[%d]: %w", t.Topic, pt.Partition, err)
				}
			}
		}
		done(<-sent)
	}
	return nil
}
