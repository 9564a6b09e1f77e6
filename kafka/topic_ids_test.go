package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// idOf returns the id of topic, as a client learns it from Metadata: raw
// Produce and Fetch requests name topics by id from v13 on, the versions
// current clients send.
func idOf(t testing.TB, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
	resp, err := req.RequestWith(context.Background(), cl) // not kadm's: it may answer from a cache
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || resp.Topics[0].TopicID == [16]byte{} {
		t.Fatalf("the id of %s: %+v", topic, resp.Topics)
	}
	return resp.Topics[0].TopicID
}

// TestTopicIDs: Produce and Fetch v13+ name topics by id, and Metadata
// v12+ may; an id no topic has is UNKNOWN_TOPIC_ID, and so is the id of a
// topic deleted and made again under its name; the internal topics have
// fixed ids.
func TestTopicIDs(t *testing.T) {
	_, cl, adm := brokerClients(t)
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "re"); err != nil {
		t.Fatal(err)
	}
	produce := func(id [16]byte) (int64, int16) {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{TopicID: id, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: segmenttest.Values(1, "v")}}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 13 || len(resp.Topics) != 1 || resp.Topics[0].TopicID != id {
			t.Fatalf("a produce by topic id: %+v", resp)
		}
		p := resp.Topics[0].Partitions[0]
		return p.BaseOffset, p.ErrorCode
	}
	fetch := func(id [16]byte) (records int, code int16) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1 << 20
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		req.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 13 || len(resp.Topics) != 1 || resp.Topics[0].TopicID != id {
			t.Fatalf("a fetch by topic id: %+v", resp)
		}
		p := resp.Topics[0].Partitions[0]
		for data := p.RecordBatches; len(data) > 0; {
			h, err := segment.ParseHeader(data)
			if err != nil || h.Size() > len(data) {
				t.Fatalf("a bad batch in a fetch response: %v", err)
			}
			records += int(h.RecordCount)
			data = data[h.Size():]
		}
		return records, p.ErrorCode
	}
	metadata := func(ids ...[16]byte) map[[16]byte]kmsg.MetadataResponseTopic {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		for _, id := range ids {
			req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{TopicID: id})
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[[16]byte]kmsg.MetadataResponseTopic{}
		for _, mt := range resp.Topics {
			out[mt.TopicID] = mt
		}
		return out
	}

	old := idOf(t, cl, "re")
	if off, code := produce(old); off != 0 || code != 0 {
		t.Fatalf("produce by id: offset %d, code %d", off, code)
	}
	if n, code := fetch(old); n != 1 || code != 0 {
		t.Fatalf("fetch by id: %d records, code %d", n, code)
	}
	for _, unknown := range [][16]byte{{1, 2, 3}, {}} {
		if _, code := produce(unknown); code != kerr.UnknownTopicID.Code {
			t.Fatalf("produce to the unknown id %x: code %d", unknown, code)
		}
		if _, code := fetch(unknown); code != kerr.UnknownTopicID.Code {
			t.Fatalf("fetch of the unknown id %x: code %d", unknown, code)
		}
	}
	unknown := [16]byte{1, 2, 3}
	md := metadata(old, unknown)
	if mt := md[old]; mt.Topic == nil || *mt.Topic != "re" || mt.ErrorCode != 0 || len(mt.Partitions) != 1 {
		t.Fatalf("metadata by id: %+v", mt)
	}
	if mt := md[unknown]; mt.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("metadata of an unknown id: %+v", mt)
	}

	// Deleted and made again under its name: a new id; the old one names
	// nothing, so its producers and consumers do not write or read the
	// new topic.
	if r, err := adm.DeleteTopic(ctx, "re"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "re"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	now := idOf(t, cl, "re")
	if now == old {
		t.Fatal("a topic made again kept its id")
	}
	if _, code := produce(old); code != kerr.UnknownTopicID.Code {
		t.Fatalf("produce by the id of a deleted topic: code %d", code)
	}
	if _, code := fetch(old); code != kerr.UnknownTopicID.Code {
		t.Fatalf("fetch by the id of a deleted topic: code %d", code)
	}
	if off, code := produce(now); off != 0 || code != 0 {
		t.Fatalf("produce by the new id: offset %d, code %d", off, code)
	}

	// The internal topics: fixed ids, told and served.
	all, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{eventlog.TopicName, group.Topic, txn.Topic} {
		if got := all.Topics[name].ID; got != kadm.TopicID(internalTopicIDs[name]) || got == (kadm.TopicID{}) {
			t.Fatalf("%s: id %x, want %x", name, got, internalTopicIDs[name])
		}
	}
	if id := internalTopicIDs[eventlog.TopicName]; id != [16]byte{15: 1} {
		t.Fatalf("the metadata log's id %x, want Kafka's for its own", id)
	}
	if n, code := fetch(internalTopicIDs[eventlog.TopicName]); n == 0 || code != 0 {
		t.Fatalf("the metadata log by id: %d records, code %d", n, code)
	}
	if _, code := produce(internalTopicIDs[eventlog.TopicName]); code != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to the metadata log by id: code %d", code)
	}
}

// TestFetchSessionNamesTopicsOneWay: a session made by a fetch that names
// topics by name is FETCH_SESSION_TOPIC_ID_ERROR to one that names them by
// id, and the other way round.
func TestFetchSessionNamesTopicsOneWay(t *testing.T) {
	c := newFetchSessions()
	request := func(version int16, id, epoch int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.SessionID, req.SessionEpoch = version, id, epoch
		req.Topics = []kmsg.FetchRequestTopic{{Topic: "t", TopicID: [16]byte{9}, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0}}}}
		return req
	}
	for _, tc := range []struct{ made, then int16 }{{12, 13}, {13, 12}, {12, 12}, {13, 18}} {
		p := c.plan(request(tc.made, 0, 0))
		if p.session == nil {
			t.Fatal("no session made")
		}
		want := int16(0)
		if (tc.made >= 13) != (tc.then >= 13) {
			want = kerr.FetchSessionTopicIDError.Code
		}
		if q := c.plan(request(tc.then, p.session.id, 1)); q.code != want {
			t.Fatalf("a session made by v%d, fetched by v%d: code %d, want %d", tc.made, tc.then, q.code, want)
		}
		c.remove(p.session.id)
	}
}

// TestOffsetsByTopicID: OffsetCommit and OffsetFetch v10 name topics by
// id; an id no topic has is UNKNOWN_TOPIC_ID for each partition, and a
// fetch of all the group's offsets answers each topic with its id.
func TestOffsetsByTopicID(t *testing.T) {
	_, cl, adm := brokerClients(t)
	ctx := context.Background()
	for _, topic := range []string{"oa", "ob"} {
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
	}
	oa, ob, unknown := idOf(t, cl, "oa"), idOf(t, cl, "ob"), [16]byte{4, 2}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "og", -1
	for _, tc := range []struct {
		id     [16]byte
		offset int64
	}{{oa, 5}, {unknown, 6}, {ob, 7}} {
		commit.Topics = append(commit.Topics, kmsg.OffsetCommitRequestTopic{TopicID: tc.id, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: tc.offset}}})
	}
	cresp, err := commit.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if cresp.Version < 10 || len(cresp.Topics) != 3 {
		t.Fatalf("a commit by topic id: %+v", cresp)
	}
	for i, want := range []int16{0, kerr.UnknownTopicID.Code, 0} {
		if rt := cresp.Topics[i]; rt.TopicID != commit.Topics[i].TopicID || rt.Partitions[0].ErrorCode != want {
			t.Fatalf("commit of topic %d: %+v, want error %d", i, rt, want)
		}
	}

	fetch := func(ids ...[16]byte) []kmsg.OffsetFetchResponseGroupTopic {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "og"
		if ids != nil {
			g.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, id := range ids {
				g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{TopicID: id, Partitions: []int32{1}})
			}
		}
		req.Groups = []kmsg.OffsetFetchRequestGroup{g}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Version < 10 || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			t.Fatalf("a fetch by topic id: %v %+v", err, resp)
		}
		return resp.Groups[0].Topics
	}
	got := fetch(ob, unknown, oa)
	if len(got) != 3 || got[0].TopicID != ob || got[0].Partitions[0].Offset != 7 ||
		got[1].TopicID != unknown || got[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code || got[1].Partitions[0].Offset != -1 ||
		got[2].TopicID != oa || got[2].Partitions[0].Offset != 5 {
		t.Fatalf("offsets by id: %+v", got)
	}
	// All of the group's offsets, each topic by its id; a deleted topic's
	// are left out.
	all := fetch()
	if len(all) != 2 || all[0].TopicID != oa || all[1].TopicID != ob {
		t.Fatalf("all offsets by id: %+v", all)
	}
	if r, err := adm.DeleteTopic(ctx, "oa"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if all = fetch(); len(all) != 1 || all[0].TopicID != ob {
		t.Fatalf("all offsets by id after a topic was deleted: %+v", all)
	}
	if got = fetch(oa); got[0].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("offsets of a deleted topic's id: %+v", got)
	}
}
