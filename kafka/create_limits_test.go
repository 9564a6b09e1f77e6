package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestPartitionsPerRequestAreBounded: a CreateTopics or CreatePartitions
// request that would make more than 10,000 partitions is POLICY_VIOLATION
// for each of its topics, at once and without creating anything (before,
// 2^31-1 partitions made the broker build as many events); 10,000 is
// created, also as 10,000 topics whose names make a metadata batch that
// compresses little; a config or a topic given twice is refused.
func TestPartitionsPerRequestAreBounded(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()

	create := func(validateOnly bool, topics map[string]int32, configs ...string) map[string]int16 {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.ValidateOnly = validateOnly
		for name, n := range topics {
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, n, 1
			for i := 0; i+1 < len(configs); i += 2 {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				c.Name, c.Value = configs[i], &configs[i+1]
				ct.Configs = append(ct.Configs, c)
			}
			req.Topics = append(req.Topics, ct)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]int16{}
		for _, rt := range resp.Topics {
			codes[rt.Topic] = rt.ErrorCode
		}
		return codes
	}
	grow := func(counts ...any) []int16 {
		t.Helper()
		req := kmsg.NewPtrCreatePartitionsRequest()
		for i := 0; i < len(counts); i += 2 {
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = counts[i].(string), int32(counts[i+1].(int))
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var codes []int16
		for _, rt := range resp.Topics {
			codes = append(codes, rt.ErrorCode)
		}
		return codes
	}
	partitions := func(topic string) int {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = &topic
		req.Topics = append(req.Topics, mt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Topics[0].ErrorCode != 0 {
			return 0
		}
		return len(resp.Topics[0].Partitions)
	}
	policy := kerr.PolicyViolation.Code

	for _, validateOnly := range []bool{true, false} {
		if got := create(validateOnly, map[string]int32{"huge": 1<<31 - 1}); got["huge"] != policy {
			t.Errorf("2^31-1 partitions (validate only %v): error %d, want POLICY_VIOLATION", validateOnly, got["huge"])
		}
	}
	if got := create(false, map[string]int32{"a": 6000, "b": 6000}); got["a"] != policy || got["b"] != policy {
		t.Errorf("two topics of 6,000 partitions: %v, want POLICY_VIOLATION for both", got)
	}
	if got := create(false, map[string]int32{"dup": 1}, "retention.ms", "1000", "retention.ms", "2000"); got["dup"] != kerr.InvalidConfig.Code {
		t.Errorf("a config given twice: error %d, want INVALID_CONFIG", got["dup"])
	}
	for _, name := range []string{"huge", "a", "b", "dup"} {
		if n := partitions(name); n != 0 {
			t.Errorf("refused topic %s exists with %d partitions", name, n)
		}
	}

	if got := create(false, map[string]int32{"max": 10_000}); got["max"] != 0 {
		t.Fatalf("10,000 partitions: error %d", got["max"])
	}
	if n := partitions("max"); n != 10_000 {
		t.Fatalf("topic max has %d partitions, want 10000", n)
	}

	// 10,000 topics of the longest random names: a metadata batch that
	// compresses little, over a data partition's max.message.bytes.
	long := map[string]int32{}
	for len(long) < 10_000 {
		b := make([]byte, 125)
		rand.Read(b)
		long[hex.EncodeToString(b)[:249]] = 1
	}
	for name, code := range create(false, long) {
		if code != 0 {
			t.Fatalf("create of 10,000 topics with long names: %s: error %d", name[:8], code)
		}
	}

	if got := create(false, map[string]int32{"g1": 1, "g2": 1}); got["g1"] != 0 || got["g2"] != 0 {
		t.Fatalf("create g1, g2: %v", got)
	}
	if got := grow("g1", 1<<31-1); got[0] != policy {
		t.Errorf("grow to 2^31-1: error %d, want POLICY_VIOLATION", got[0])
	}
	if got := grow("g1", 5001, "g2", 5002); got[0] != policy || got[1] != policy {
		t.Errorf("grow by 5,000 and 5,001: %v, want POLICY_VIOLATION for both", got)
	}
	if got := grow("g1", 3, "g1", 4); got[0] != kerr.InvalidRequest.Code || got[1] != kerr.InvalidRequest.Code {
		t.Errorf("a topic listed twice: %v, want INVALID_REQUEST", got)
	}
	if got := grow("g1", 5001, "g2", 5001); got[0] != 0 || got[1] != 0 {
		t.Errorf("grow by 5,000 each: %v", got)
	}
	if a, b := partitions("g1"), partitions("g2"); a != 5001 || b != 5001 {
		t.Errorf("g1, g2 have %d, %d partitions, want 5001", a, b)
	}

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "max", Partition: 9999, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce after the refused requests: %v", err)
	}
}

// TestAutoCreateInFewBatches: the new topics one Metadata request names are
// created together, in as few metadata batches as the bound on partitions
// per request allows, not one batch (and one sync) each; a bad name or a
// name given twice does not stop the others.
func TestAutoCreateInFewBatches(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	b.cfg.AutoCreateTopics = true
	batches := func(from int64) int { return metaBatches(t, b, from) }
	ask := func(names ...string) *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.Version, req.AllowAutoTopicCreation = 12, true
		for _, name := range names {
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = &name
			req.Topics = append(req.Topics, mt)
		}
		resp, err := metadata(b, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.MetadataResponse)
	}
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("auto-%03d", i))
	}
	from := b.meta.Segment().HighWatermark()
	resp := ask(append(names, "auto-007", "bad name")...)
	for _, rt := range resp.Topics {
		want := int16(0)
		if *rt.Topic == "bad name" {
			want = kerr.InvalidTopicException.Code
		}
		if rt.ErrorCode != want || want == 0 && len(rt.Partitions) != 1 {
			t.Errorf("topic %s: error %d, %d partitions", *rt.Topic, rt.ErrorCode, len(rt.Partitions))
		}
	}
	if n := batches(from); n != 1 {
		t.Errorf("300 topics auto-created in %d batches, want 1", n)
	}

	b.cfg.DefaultPartitions = 4000 // two topics a batch
	from = b.meta.Segment().HighWatermark()
	resp = ask("wide-1", "wide-2", "wide-3", "wide-4", "wide-5")
	for _, rt := range resp.Topics {
		if rt.ErrorCode != 0 || len(rt.Partitions) != 4000 {
			t.Errorf("topic %s: error %d, %d partitions", *rt.Topic, rt.ErrorCode, len(rt.Partitions))
		}
	}
	if n := batches(from); n != 3 {
		t.Errorf("5 topics of 4,000 partitions auto-created in %d batches, want 3", n)
	}
}

// metaBatches counts the metadata log's batches from offset from on.
func metaBatches(t *testing.T, b *Broker, from int64) int {
	t.Helper()
	n := 0
	for off := from; off < b.meta.Segment().HighWatermark(); n++ {
		h, err := b.meta.Segment().HeaderAt(off)
		if err != nil {
			t.Fatal(err)
		}
		off = h.LastOffset() + 1
	}
	return n
}

// TestDeleteTopicsInOneBatch: the topics one DeleteTopics request deletes
// go in one metadata batch; a topic named twice (by name and by id) is
// INVALID_REQUEST and stays; an unknown one UNKNOWN_TOPIC_OR_PARTITION.
func TestDeleteTopicsInOneBatch(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	var specs []topicSpec
	for i := range 300 {
		specs = append(specs, topicSpec{name: fmt.Sprintf("d-%03d", i), partitions: 2})
	}
	ids, err := b.createTopics(append(specs, topicSpec{name: "twice", partitions: 1}))
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	named := func(name string) kmsg.DeleteTopicsRequestTopic {
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = &name
		return dt
	}
	for _, spec := range specs {
		req.Topics = append(req.Topics, named(spec.name))
	}
	byID := kmsg.NewDeleteTopicsRequestTopic()
	byID.TopicID = ids[len(ids)-1]
	req.Topics = append(req.Topics, named("twice"), byID, named("nope"))
	from := b.meta.Segment().HighWatermark()
	resp, err := deleteTopics(b, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.(*kmsg.DeleteTopicsResponse).Topics {
		want := int16(0)
		switch *rt.Topic {
		case "twice":
			want = kerr.InvalidRequest.Code
		case "nope":
			want = kerr.UnknownTopicOrPartition.Code
		}
		if rt.ErrorCode != want {
			t.Errorf("delete %s: error %d, want %d", *rt.Topic, rt.ErrorCode, want)
		}
	}
	if n := metaBatches(t, b, from); n != 1 {
		t.Errorf("300 topics deleted in %d batches, want 1", n)
	}
	b.meta.View(func(s *eventlog.State) {
		if len(s.Topics) != 1 || s.Topics["twice"] == nil {
			t.Errorf("topics left: %d, want only twice", len(s.Topics))
		}
	})
}

// TestCreateTopicsEachAloneWhenOneIsTaken: topics created together whose
// batch does not apply, because one of them was created meanwhile, are
// created one at a time, and only that one fails.
func TestCreateTopicsEachAloneWhenOneIsTaken(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	specs := []topicSpec{{name: "a", partitions: 1}, {name: "taken", partitions: 1}, {name: "c", partitions: 2}}
	groups, _, err := b.prepareTopics(specs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.createTopic("taken", 1, nil); err != nil { // after the check, before the batch
		t.Fatal(err)
	}
	errs := b.appendEach(nil, groups)
	if errs[0] != nil || !errors.Is(errs[1], eventlog.ErrRefused) || errs[2] != nil {
		t.Fatalf("errors %v, want only the taken topic refused", errs)
	}
	b.meta.View(func(s *eventlog.State) {
		if s.Topics["a"] == nil || s.Topics["c"] == nil || len(s.Topics["c"].Partitions) != 2 {
			t.Errorf("a and c not created: %v", s.Topics)
		}
	})
}
