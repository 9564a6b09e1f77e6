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

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// bumpEpoch gives partition 0 of topic a new leader epoch (this node
// still leads it), as a controller does when leadership moves.
func bumpEpoch(t *testing.T, b *Broker, topic string, epoch int32) {
	t.Helper()
	if _, err := b.meta.Append(&eventlog.PartitionChanged{Topic: topic, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: epoch}); err != nil {
		t.Fatal(err)
	}
}

// TestLeaderEpochs: batches carry the leader epoch they were produced in;
// OffsetForLeaderEpoch says where each epoch ends; ListOffsets gives the
// epoch of what it finds; requests naming an older or newer current epoch
// than the partition's are fenced or told to wait.
func TestLeaderEpochs(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx := context.Background()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("ep"), kgo.MetadataMinAge(10*time.Millisecond)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "ep"); err != nil {
		t.Fatal(err)
	}
	produce := func(n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(3) // offsets 0-2, epoch 0
	bumpEpoch(t, b, "ep", 1)
	produce(2) // 3-4, epoch 1
	bumpEpoch(t, b, "ep", 3)
	produce(1) // 5, epoch 3
	bumpEpoch(t, b, "ep", 4)
	cl.ForceMetadataRefresh()

	// The batches' epochs as stored.
	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "ep", idOf(t, cl, "ep")
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fetch.Topics = []kmsg.FetchRequestTopic{ft}
	resp, err := fetch.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var epochs []int32
	for data := resp.Topics[0].Partitions[0].RecordBatches; len(data) > 0; {
		h, err := segment.ParseHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		epochs = append(epochs, h.PartitionLeaderEpoch)
		data = data[h.Size():]
	}
	if fmt.Sprint(epochs) != "[0 0 0 1 1 3]" {
		t.Fatalf("batch epochs %v, want [0 0 0 1 1 3]", epochs)
	}

	ask := func(current, epoch int32) (int16, int32, int64) {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "ep"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
		rt.Partitions = []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}
		req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		return p.ErrorCode, p.LeaderEpoch, p.EndOffset
	}
	for _, c := range []struct {
		epoch, wantEpoch int32
		wantEnd          int64
	}{
		{0, 0, 3}, {1, 1, 5}, {2, 1, 5}, {3, 3, 6}, {4, 4, 6}, {5, -1, -1}, {-1, -1, -1},
	} {
		if code, e, end := ask(4, c.epoch); code != 0 || e != c.wantEpoch || end != c.wantEnd {
			t.Errorf("epoch %d: code %d, epoch %d ends at %d; want epoch %d ending at %d", c.epoch, code, e, end, c.wantEpoch, c.wantEnd)
		}
	}
	if code, _, _ := ask(3, 1); code != kerr.FencedLeaderEpoch.Code {
		t.Errorf("an older current epoch: code %d, want FENCED_LEADER_EPOCH", code)
	}
	if code, _, _ := ask(5, 1); code != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("a newer current epoch: code %d, want UNKNOWN_LEADER_EPOCH", code)
	}

	// ListOffsets: the epoch of what it finds; the current one at the end.
	list := func(ts int64, current int32) (int16, int64, int32) {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "ep"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch = ts, current
		rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp}
		req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		return p.ErrorCode, p.Offset, p.LeaderEpoch
	}
	if code, off, e := list(-1, 4); code != 0 || off != 6 || e != 4 {
		t.Errorf("latest: code %d, offset %d, epoch %d; want 6 in epoch 4", code, off, e)
	}
	if code, off, e := list(-2, -1); code != 0 || off != 0 || e != 0 {
		t.Errorf("earliest: code %d, offset %d, epoch %d; want 0 in epoch 0", code, off, e)
	}
	if code, off, e := list(-3, -1); code != 0 || off < 0 || e < 0 {
		t.Errorf("max timestamp: code %d, offset %d, epoch %d", code, off, e)
	}
	if code, _, _ := list(-1, 2); code != kerr.FencedLeaderEpoch.Code {
		t.Errorf("ListOffsets with an older current epoch: code %d", code)
	}

	// Fetch: an older current epoch is fenced.
	fetch.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
	if resp, err = fetch.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("fetch with an older current epoch: %v, %+v", err, resp)
	}
}

// TestConsumerAcrossEpochChanges: a kgo consumer reading while the
// partition's leader epoch moves on (its fetches are fenced, it refreshes
// its metadata and checks its position with OffsetForLeaderEpoch) reads
// every record once.
func TestConsumerAcrossEpochChanges(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("moving")))
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 1, 1, nil, "moving"); err != nil {
		t.Fatal(err)
	}
	cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("moving"), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(10*time.Millisecond)))
	defer cons.Close()
	seen := map[string]int{}
	want := 0
	for round := range 6 {
		for i := range 20 {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d/%d", round, i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want++
		}
		bumpEpoch(t, b, "moving", int32(round+1))
		for len(seen) < want {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("round %d: %d of %d records read", round, len(seen), want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s-%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				seen[string(r.Value)]++
				if r.LeaderEpoch > int32(round+1) {
					t.Errorf("record %s has epoch %d in round %d", r.Value, r.LeaderEpoch, round)
				}
			})
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("%s read %d times", v, n)
		}
	}
}
