package kafka

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestBrokerConfigs: kadm describes this node's broker configs (what the
// start flags set, under Kafka's names), read-only; the cluster-wide
// defaults are empty; another broker's id and alterations are refused with
// a message.
func TestBrokerConfigs(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker 1: %v, %+v", err, rcs)
	}
	got := map[string]kadm.Config{}
	for _, c := range rcs[0].Configs {
		got[c.Key] = c
		if !c.Sensitive && c.Value == nil {
			t.Errorf("%s has no value", c.Key)
		}
	}
	for key, want := range map[string]string{
		"broker.id":                      "1",
		"num.partitions":                 "2", // the test broker's DefaultPartitions
		"auto.create.topics.enable":      "true",
		"group.min.session.timeout.ms":   "100",
		"offsets.retention.minutes":      "10080",
		"transaction.max.timeout.ms":     "900000",
		"message.max.bytes":              "1048588",
		"log.dirs":                       b.store.Dir(),
		"advertised.listeners":           "PLAINTEXT://" + addr,
		"transactional.id.expiration.ms": "604800000",
	} {
		c, ok := got[key]
		if !ok || c.Value == nil || *c.Value != want {
			t.Errorf("%s = %v, want %s", key, c.MaybeValue(), want)
		}
	}
	if c := got["num.partitions"]; c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("num.partitions set by a flag: source %v", c.Source)
	}
	if c := got["offsets.retention.minutes"]; c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("offsets.retention.minutes at Kafka's default: source %v", c.Source)
	}

	// The cluster-wide defaults (no name): none, no error.
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"", "7"} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, r)
	}
	kresp, err := cl.Broker(1).Request(ctx, req) // straight to this node: kgo routes by the resource's broker id
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DescribeConfigsResponse)
	if r := resp.Resources[0]; r.ErrorCode != 0 || len(r.Configs) != 0 {
		t.Errorf("cluster-wide defaults: code %d, %d configs", r.ErrorCode, len(r.Configs))
	}
	if r := resp.Resources[1]; r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil {
		t.Errorf("another broker's configs: code %d", r.ErrorCode)
	}

	// Read-only: an alteration is refused, saying how to set them.
	v := "5"
	alts, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: &v}}, 1)
	if err != nil || len(alts) != 1 || alts[0].Err == nil || alts[0].ErrMessage == "" {
		t.Fatalf("alter a broker config: %v, %+v", err, alts)
	}
	if rcs, _ := adm.DescribeBrokerConfigs(ctx, 1); len(rcs) == 1 {
		for _, c := range rcs[0].Configs {
			if c.Key == "num.partitions" && c.MaybeValue() != strconv.Itoa(2) {
				t.Fatalf("num.partitions changed to %s", c.MaybeValue())
			}
		}
	}
}

// TestSingleNodeRecordsItsClusterID: a single node's metadata holds its
// cluster id, as a cluster's does, so that its data, started later as a
// node of a cluster, is not taken for another cluster's.
func TestSingleNodeRecordsItsClusterID(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	var id string
	b.meta.View(func(s *eventlog.State) { id = s.BrokerConfigs[""][ClusterIDConfig] })
	if id != "test" {
		t.Fatalf("the metadata holds cluster id %q", id)
	}
}
