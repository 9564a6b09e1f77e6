package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// consumeN reads the first n records of topic.
func consumeN(t *testing.T, ctx context.Context, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s after %d records: %v", topic, len(out), err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// produceRaw sends one record to partition 0 of topic with acks -1 or 1
// and returns the partition's answer.
func produceRaw(t *testing.T, ctx context.Context, addr, topic string, acks int16, ts time.Time) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	ack := kgo.AllISRAcks()
	if acks == 1 {
		ack = kgo.LeaderAck()
	}
	// kgo sends raw produce requests with the acks it is configured with.
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(ack), kgo.DisableIdempotentWrite()))
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, idOf(t, cl, topic)
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = segmenttest.Values(ts.UnixMilli(), "v")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// TestMessageTimestampType: a LogAppendTime topic's records carry the
// time the broker appended them, told in the produce response and read
// back by consumers; a CreateTime topic keeps the producer's; switching a
// topic's type takes effect on its open partitions.
func TestMessageTimestampType(t *testing.T) {
	addr, ctx, adm := brokerAdmin(t)
	for topic, typ := range map[string]string{"appended": "LogAppendTime", "created": "CreateTime"} {
		res, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"message.timestamp.type": kadm.StringPtr(typ)}, topic)
		if err != nil || res[topic].Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, res[topic].Err)
		}
	}
	produced := time.UnixMilli(1_000_000)

	before := time.Now().UnixMilli()
	rp := produceRaw(t, ctx, addr, "appended", -1, produced)
	if rp.ErrorCode != 0 || rp.LogAppendTime < before || rp.LogAppendTime > time.Now().UnixMilli() {
		t.Fatalf("LogAppendTime produce answered error %d, log append time %d (sent at %d)", rp.ErrorCode, rp.LogAppendTime, before)
	}
	got := consumeN(t, ctx, addr, "appended", 1)[0]
	if got.Timestamp.UnixMilli() != rp.LogAppendTime || got.Attrs.TimestampType() != 1 {
		t.Fatalf("LogAppendTime record read back with %v (type %d), want %d", got.Timestamp.UnixMilli(), got.Attrs.TimestampType(), rp.LogAppendTime)
	}

	if rp := produceRaw(t, ctx, addr, "created", -1, produced); rp.ErrorCode != 0 || rp.LogAppendTime != -1 {
		t.Fatalf("CreateTime produce answered error %d, log append time %d", rp.ErrorCode, rp.LogAppendTime)
	}
	if got := consumeN(t, ctx, addr, "created", 1)[0]; !got.Timestamp.Equal(produced) || got.Attrs.TimestampType() != 0 {
		t.Fatalf("CreateTime record read back with %v (type %d), want %v", got.Timestamp, got.Attrs.TimestampType(), produced)
	}

	// Switched to LogAppendTime while the partition is open.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")}}, "created"); err != nil {
		t.Fatal(err)
	}
	rp = produceRaw(t, ctx, addr, "created", -1, produced)
	if got := consumeN(t, ctx, addr, "created", 2)[1]; got.Timestamp.UnixMilli() != rp.LogAppendTime || got.Attrs.TimestampType() != 1 {
		t.Fatalf("after the switch, a record read back with %d (type %d), want %d", got.Timestamp.UnixMilli(), got.Attrs.TimestampType(), rp.LogAppendTime)
	}

	res, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"message.timestamp.type": kadm.StringPtr("BrokerTime")}, "bad")
	if err != nil || res["bad"].Err != kerr.InvalidConfig {
		t.Fatalf("message.timestamp.type=BrokerTime: %v %v", err, res["bad"].Err)
	}
}

// TestMinInsyncReplicas: acks=all to a topic asking more in-sync replicas
// than its partition has is NOT_ENOUGH_REPLICAS and writes nothing;
// acks=1 goes through; lowering the config lets acks=all through.
func TestMinInsyncReplicas(t *testing.T) {
	addr, ctx, adm := brokerAdmin(t)
	res, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "strict")
	if err != nil || res["strict"].Err != nil {
		t.Fatalf("create: %v %v", err, res["strict"].Err)
	}
	if rp := produceRaw(t, ctx, addr, "strict", -1, time.Now()); rp.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with 1 in-sync replica of 2 wanted: error %d, want NOT_ENOUGH_REPLICAS", rp.ErrorCode)
	}
	if rp := produceRaw(t, ctx, addr, "strict", 1, time.Now()); rp.ErrorCode != 0 || rp.BaseOffset != 0 {
		t.Fatalf("acks=1: error %d at offset %d, want offset 0 (nothing written before)", rp.ErrorCode, rp.BaseOffset)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("1")}}, "strict"); err != nil {
		t.Fatal(err)
	}
	if rp := produceRaw(t, ctx, addr, "strict", -1, time.Now()); rp.ErrorCode != 0 {
		t.Fatalf("acks=all after lowering min.insync.replicas: error %d", rp.ErrorCode)
	}
	for _, bad := range []string{"0", "x"} {
		res, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"min.insync.replicas": kadm.StringPtr(bad)}, "bad")
		if err != nil || res["bad"].Err != kerr.InvalidConfig {
			t.Fatalf("min.insync.replicas=%s: %v %v", bad, err, res["bad"].Err)
		}
	}
}

// TestCreateTopicsAnswersWithConfigs: from version 5, a created topic's
// answer lists its configs, set ones as the topic's and the rest as
// defaults, validate-only too, as DescribeConfigs does.
func TestCreateTopicsAnswersWithConfigs(t *testing.T) {
	_, ctx, adm := brokerAdmin(t)
	set := map[string]*string{"retention.ms": kadm.StringPtr("60000")}
	for _, validate := range []bool{false, true} {
		create, topic := adm.CreateTopics, "configured"
		if validate {
			create, topic = adm.ValidateCreateTopics, "validated"
		}
		res, err := create(ctx, 1, 1, set, topic)
		if err != nil || res[topic].Err != nil {
			t.Fatalf("create (validate only %v): %v %v", validate, err, res[topic].Err)
		}
		got := res[topic].Configs
		if len(got) != len(topicConfigKeys) {
			t.Fatalf("validate only %v: %d configs in the answer, want %d: %v", validate, len(got), len(topicConfigKeys), got)
		}
		if c := got["retention.ms"]; c.Value == nil || *c.Value != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("validate only %v: retention.ms answered as %+v", validate, c)
		}
		if c := got["cleanup.policy"]; c.Value == nil || *c.Value != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("validate only %v: cleanup.policy answered as %+v", validate, c)
		}
	}
	// A topic that is not made lists none.
	res, err := adm.CreateTopics(ctx, 1, 1, nil, "configured")
	if err != nil || !errors.Is(res["configured"].Err, kerr.TopicAlreadyExists) || len(res["configured"].Configs) != 0 {
		t.Fatalf("creating it again: %v %v, configs %v", err, res["configured"].Err, res["configured"].Configs)
	}
}
