package group

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

func txnCommitReq(group string, pid int64, topic string, offsets ...int64) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = group, pid, 0, -1
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = topic
	for p, o := range offsets {
		t.Partitions = append(t.Partitions, kmsg.TxnOffsetCommitRequestTopicPartition{Partition: int32(p), Offset: o, LeaderEpoch: -1})
	}
	req.Topics = append(req.Topics, t)
	return req
}

// TestTransactionalOffsets: offsets committed in a transaction are not
// visible (and unstable to a fetch that requires stable offsets) until the
// transaction commits; an aborted transaction's never are. Pending offsets
// survive a restart (ended by a marker after it) and a compaction.
func TestTransactionalOffsets(t *testing.T) {
	cfg := fastConfig()
	cfg.CompactBytes = 1
	cfg.InTransaction = func(pid int64, _ int16) bool { return pid != 9 }
	c, reopen := testCoordinator(t, cfg)
	r := within(t, time.Second, c.TxnCommit(txnCommitReq("g", 9, "t", 1)))
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("offsets of a producer whose transaction did not add them: code %d", code)
	}
	commitTxn := func(c *Coordinator, pid int64, offsets ...int64) {
		t.Helper()
		r := within(t, time.Second, c.TxnCommit(txnCommitReq("g", pid, "t", offsets...)))
		for _, p := range r.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("txn commit: %+v", r)
			}
		}
	}
	commitTxn(c, 1, 10, 20)
	if got := fetched(t, c, "g"); len(got) != 0 {
		t.Fatalf("offsets of an open transaction visible: %v", got)
	}
	topics, _ := c.Fetch("g", []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}, true)
	if code := topics[0].Partitions[0].ErrorCode; code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("require stable with a pending offset: code %d", code)
	}
	if err := c.EndTxn(1, 0, true); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int64{"t": {10, 20}}
	if got := fetched(t, c, "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after commit: %v, want %v", got, want)
	}

	commitTxn(c, 2, 99, 99)
	if err := c.EndTxn(2, 0, false); err != nil {
		t.Fatal(err)
	}
	commitTxn(c, 3, 30, 40) // left open across a restart and a compaction
	c = reopen()
	if got := fetched(t, c, "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart: %v, want %v (the abort's offsets and the open transaction's invisible)", got, want)
	}
	if done, err := c.Compact(); !done || err != nil {
		t.Fatalf("compact: %v %v", done, err)
	}
	c = reopen()
	if err := c.EndTxn(3, 0, true); err != nil {
		t.Fatal(err)
	}
	want = map[string][]int64{"t": {30, 40}}
	if got := fetched(t, c, "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("the open transaction committed after restart and compaction: %v, want %v", got, want)
	}
	c = reopen()
	if got := fetched(t, c, "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a last restart: %v, want %v", got, want)
	}
}

// FuzzReplayBatch: any stored batch replays or fails cleanly, including
// transactional batches and markers.
func FuzzReplayBatch(f *testing.F) {
	rec := offsetRecord("g", "t", 1, offset{offset: 5})
	body := segment.AppendRecords(nil, []segment.Record{rec})
	f.Add(segment.BuildBatchAs(body, 1, segment.CodecNone, 1, segment.BatchProducer{ID: 1, Sequence: -1, Transactional: true}))
	f.Add(segment.BuildMarker(1, 0, true, 0, 1))
	f.Add(segment.BuildBatch(body, 1, segment.CodecNone, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := segment.ParseHeader(b)
		if err != nil || h.Size() != len(b) {
			return
		}
		c := &Coordinator{groups: map[string]*group{}}
		_ = c.replayBatch(&h, b)
	})
}
