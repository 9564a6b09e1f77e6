package kafka

import (
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
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
		a, dupBase, code := appendBatch(part, &appendReq{records: batch, acks: -1})
		if a == nil {
			return dupBase, code
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
