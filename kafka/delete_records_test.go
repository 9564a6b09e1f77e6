package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/kafka/group"
)

// TestDeleteRecords: kadm deletes records before an offset; the start
// offset moves, consumers from the start begin there, a fetch below it is
// out of range, and the start survives a restart.
func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	addr, stop := runBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("logs")))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "logs"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("r", i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deleteBefore := func(topic string, offset int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var o kadm.Offsets
		o.AddOffset(topic, 0, offset, -1)
		resp, err := adm.DeleteRecords(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := resp.Lookup(topic, 0)
		return r
	}
	if r := deleteBefore("logs", 4); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete before 4: %+v", r)
	}
	if r := deleteBefore("logs", 2); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete before 2, below the start: %+v", r)
	}
	for _, tc := range []struct {
		topic  string
		offset int64
		want   error
	}{
		{"logs", 11, kerr.OffsetOutOfRange},
		{"logs", -5, kerr.OffsetOutOfRange},
		{"nowhere", 0, kerr.UnknownTopicOrPartition},
		{group.Topic, 0, kerr.InvalidTopicException},
	} {
		// Straight to the broker: kadm refuses a topic it cannot find.
		req := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = tc.topic
		rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: tc.offset}}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(1))
		if err != nil {
			t.Fatal(err)
		}
		if p := resp.Topics[0].Partitions[0]; kerr.ErrorForCode(p.ErrorCode) != tc.want || p.LowWatermark != -1 {
			t.Errorf("delete before %d of %s: error %v, low watermark %d; want %v", tc.offset, tc.topic, kerr.ErrorForCode(p.ErrorCode), p.LowWatermark, tc.want)
		}
	}

	check := func(addr string, start int64) {
		t.Helper()
		cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("logs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
		defer cons.Close()
		var got []string
		for len(got) < int(10-start) {
			fs := cons.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatalf("consume: %v", err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if got[0] != fmt.Sprint("r", start) {
			t.Fatalf("consumption from the start began at %s, want r%d", got[0], start)
		}
		starts, err := kadm.NewClient(cons).ListStartOffsets(ctx, "logs")
		if o, _ := starts.Lookup("logs", 0); err != nil || o.Offset != start {
			t.Fatalf("start offset %+v, %v; want %d", o, err, start)
		}
		fetch := kmsg.NewPtrFetchRequest()
		// A long MaxWait: an error is answered at once, as Kafka does.
		fetch.Version, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 12, 20000, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "logs"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = start-1, 1<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
		fetch.Topics = append(fetch.Topics, ft)
		// From a client of its own: the consumer's fetch connection is busy
		// with its long poll.
		raw := must(kgo.NewClient(kgo.SeedBrokers(addr)))
		defer raw.Close()
		fetch.Topics[0].TopicID = idOf(t, raw, "logs")
		began := time.Now()
		resp, err := fetch.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Fatalf("the fetch below the start took %v: it waited for data instead of answering its error", took)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != start {
			t.Fatalf("fetch below the start: error %d, log start %d", p.ErrorCode, p.LogStartOffset)
		}
	}
	check(addr, 4)
	cl.Close()
	stop()
	addr = startBroker(t, dir)
	check(addr, 4)

	// -1 is the high watermark: everything goes.
	cl = must(kgo.NewClient(kgo.SeedBrokers(addr)))
	adm = kadm.NewClient(cl)
	if r := deleteBefore("logs", -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete before the high watermark: %+v", r)
	}
}
