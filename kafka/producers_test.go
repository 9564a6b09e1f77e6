package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestProducerStateExpires: an idempotent producer's state goes once it
// has not written for the producer id expiration, both while the broker
// runs and when the state is rebuilt from the log; a producer coming back
// after that carries on at the sequence it is at (no state: any sequence
// is accepted, as in Kafka).
func TestProducerStateExpires(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("t", 1, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}); err != nil {
		t.Fatal(err)
	}
	part, code := b.openPartition("t", 0)
	if code != 0 {
		t.Fatalf("open: %d", code)
	}
	now := time.Now()
	produce := func(pid int64, seq int32, ts time.Time) (int64, int16) {
		t.Helper()
		batch := segmenttest.Batch{Idempotent: true, ProducerID: pid, BaseSequence: seq, BaseTimestamp: ts.UnixMilli(),
			Records: []segmenttest.Record{{Value: []byte("v")}}}.Build()
		a, dup, code := appendBatch(part, &appendReq{records: batch, acks: -1})
		if dup != nil {
			return dup.base, code
		}
		if a == nil {
			return -1, code
		}
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
		return a.Base, code
	}
	produce(1, 0, now.Add(-48*time.Hour)) // an old batch of producer 1
	produce(2, 0, now)
	if off, code := produce(2, 0, now); off != 1 || code != 0 {
		t.Fatalf("retry before expiry: offset %d code %d, want the original offset 1", off, code)
	}

	// Rebuilt from the log: producer 1's batch is two days old.
	ps, err := loadProducers(part.log, DefaultProducerIDExpiration)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ps.byID[1]; ok || ps.byID[2] == nil {
		t.Fatalf("rebuilt state has producers %v, want only 2", keys(ps.byID))
	}

	b.expireProducers(now.Add(time.Hour))
	if n := len(part.producers.byID); n != 2 {
		t.Fatalf("%d producers after an hour, want both (both wrote just now)", n)
	}
	b.expireProducers(now.Add(DefaultProducerIDExpiration + time.Minute))
	if n := len(part.producers.byID); n != 0 {
		t.Fatalf("%d producers after the expiration, want none", n)
	}
	if off, code := produce(2, 1, now); code != 0 || off != 2 {
		t.Fatalf("the next batch of an expired producer: offset %d code %d, want appended at 2", off, code)
	}
	if _, _, code := appendBatch(part, &appendReq{records: segmenttest.Batch{Idempotent: true, ProducerID: 2, BaseSequence: 5,
		Records: []segmenttest.Record{{Value: []byte("v")}}}.Build(), acks: -1}); code == 0 {
		t.Fatal("a gap after the producer's state was rebuilt was accepted")
	}
}

func keys(m map[int64]*producerEntry) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestExpiryInterval: expired state is looked for every ten minutes, or a
// tenth of the shortest expiration when the flags make one short.
func TestExpiryInterval(t *testing.T) {
	day, week := 24*time.Hour, 7*24*time.Hour
	for _, tc := range []struct {
		expirations []time.Duration
		want        time.Duration
	}{
		{[]time.Duration{day, week, week}, 10 * time.Minute},
		{[]time.Duration{2 * time.Minute, week, week}, 12 * time.Second},
		{[]time.Duration{day, time.Minute, week}, 6 * time.Second},
		{[]time.Duration{time.Second}, time.Second},
	} {
		if got := expiryInterval(tc.expirations...); got != tc.want {
			t.Errorf("expirations %v: every %v, want %v", tc.expirations, got, tc.want)
		}
	}
}

// TestARetryIsAnsweredAsItsBatch: a producer retries a batch whose sync is
// still running (its request timed out on a slow disk), and the sync then
// fails. The retry is a duplicate and is not appended again; it was
// answered at once with the batch's offset, as durable, and the batch,
// dropped with the failed sync, was lost although acknowledged. It is now
// answered as the batch's own request is: with the storage error.
func TestARetryIsAnsweredAsItsBatch(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	b := memBroker(t, fsys)
	if _, err := b.createTopic("t", 1, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}); err != nil {
		t.Fatal(err)
	}
	request := func() func() (kmsg.Response, error) {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = segmenttest.Batch{Idempotent: true, ProducerID: 7, Records: []segmenttest.Record{{Value: []byte("v")}}}.Build()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return produce(b, &reqContext{}, req)
	}
	answer := func(wait func() (kmsg.Response, error)) (int64, int16) {
		t.Helper()
		resp, err := wait()
		if err != nil {
			t.Fatal(err)
		}
		p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		return p.BaseOffset, p.ErrorCode
	}
	if _, code := b.openPartition("t", 0); code != 0 {
		t.Fatalf("open: code %d", code)
	}

	release := fsys.HoldSyncs()
	defer release() // a failure must not leave the broker's close waiting for the sync
	first, retry := request(), request()
	answered := make(chan [2]int64, 1)
	go func() {
		off, code := answer(retry)
		answered <- [2]int64{off, int64(code)}
	}()
	select {
	case got := <-answered:
		t.Fatalf("the retry was answered (offset %d, code %d) while its batch's sync was running", got[0], got[1])
	case <-time.After(50 * time.Millisecond):
	}
	fsys.FailSyncs(1)
	release()
	if off, code := answer(first); code != kerr.KafkaStorageError.Code {
		t.Fatalf("the batch whose sync failed: offset %d, code %d", off, code)
	}
	if got := <-answered; got[1] != int64(kerr.KafkaStorageError.Code) {
		t.Fatalf("the retry of a batch whose sync failed: offset %d, code %d, want KAFKA_STORAGE_ERROR", got[0], got[1])
	}

	// The producer's state went with the failure: the next retry is
	// written, and durable.
	if off, code := answer(request()); code != 0 || off != 0 {
		t.Fatalf("the retry after the failure: offset %d, code %d, want written at 0", off, code)
	}
}

// TestAProducersLaterBatchWaitsForItsLostOne: a pipelined idempotent
// producer's batch 1 is dropped by a failed sync. Its batch 2, arriving
// before or after the broker has learnt of the loss, is refused with a
// retriable error rather than written in batch 1's place: the producer's
// batches stay in its order once it sends 1 and 2 again.
func TestAProducersLaterBatchWaitsForItsLostOne(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	b := memBroker(t, fsys)
	if _, err := b.createTopic("t", 1, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}); err != nil {
		t.Fatal(err)
	}
	part, code := b.openPartition("t", 0)
	if code != 0 {
		t.Fatalf("open: code %d", code)
	}
	batch := func(seq int32) []byte {
		return segmenttest.Batch{Idempotent: true, ProducerID: 7, BaseSequence: seq, Records: []segmenttest.Record{{Value: []byte{byte(seq)}}}}.Build()
	}
	appendSeq := func(seq int32) (*segment.Appended, int16) {
		a, _, code := appendBatch(part, &appendReq{records: batch(seq), acks: -1})
		return a, code
	}
	if a, code := appendSeq(0); code != 0 || a.Wait() != nil {
		t.Fatalf("batch 0: code %d", code)
	}
	release := fsys.HoldSyncs()
	defer release()
	lost, code := appendSeq(1)
	if code != 0 {
		t.Fatalf("batch 1: code %d", code)
	}
	fsys.FailSyncs(1)
	release()
	if lost.Wait() == nil {
		t.Fatal("batch 1's sync did not fail")
	}
	// Before the loss is noted in the producer's state, and after.
	if _, code := appendSeq(2); code != kerr.KafkaStorageError.Code {
		t.Fatalf("batch 2 after batch 1 was dropped: code %d, want KAFKA_STORAGE_ERROR", code)
	}
	h, _ := segment.ParseHeader(batch(1))
	part.producers.lost(&h)
	if _, code := appendSeq(2); code != kerr.KafkaStorageError.Code {
		t.Fatalf("batch 2 once the loss is known: code %d, want KAFKA_STORAGE_ERROR", code)
	}
	for seq := int32(1); seq <= 2; seq++ {
		a, code := appendSeq(seq)
		if code != 0 || a.Wait() != nil || a.Base != int64(seq) {
			t.Fatalf("batch %d sent again: code %d", seq, code)
		}
	}
	for off := int64(0); off < 3; off++ {
		got, err := part.log.HeaderAt(off)
		if err != nil || got.BaseSequence != int32(off) {
			t.Fatalf("offset %d holds sequence %d (%v)", off, got.BaseSequence, err)
		}
	}
}
