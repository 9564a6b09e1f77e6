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

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestElectLeadersWithKadm: partitions led by their preferred replica need
// no election, asked by name or for all; an unknown one is
// UNKNOWN_TOPIC_OR_PARTITION.
func TestElectLeadersWithKadm(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "led"); err != nil {
		t.Fatal(err)
	}
	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		res, err := adm.ElectLeaders(ctx, how, kadm.TopicsSet{"led": {0: {}, 1: {}}, "none": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if err := res["led"][p].Err; !errors.Is(err, kerr.ElectionNotNeeded) {
				t.Errorf("election %v of led-%d: %v, want ELECTION_NOT_NEEDED", how, p, err)
			}
		}
		if err := res["none"][0].Err; !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("election %v of an unknown topic: %v", how, err)
		}
		all, err := adm.ElectLeaders(ctx, how, nil)
		if err != nil {
			t.Fatal(err)
		}
		for topic, ps := range all {
			for p, r := range ps {
				t.Errorf("election %v of every partition answered %s-%d: %v; want only elections made or failed", how, topic, p, r.Err)
			}
		}
	}
}

// TestElectLeadersOfAFencedBroker: a partition whose only replica is on a
// fenced broker has nobody to elect; once the broker is back, an unclean
// election gives it the partition at the next leader epoch, and a
// preferred one then finds nothing to do.
func TestElectLeadersOfAFencedBroker(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.meta.Append(&eventlog.BrokerFenced{BrokerID: 1},
		&eventlog.PartitionChanged{Topic: "t", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: -1, LeaderEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	elect := func(typ int8) int16 {
		t.Helper()
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version, req.ElectionType = 2, typ
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := electLeaders(b, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ElectLeadersResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := elect(0); code != kerr.PreferredLeaderNotAvailable.Code {
		t.Errorf("preferred election with the broker fenced: %d", code)
	}
	if code := elect(1); code != kerr.EligibleLeadersNotAvailable.Code {
		t.Errorf("unclean election with the broker fenced: %d", code)
	}
	if _, err := b.meta.Append(&eventlog.BrokerUnfenced{BrokerID: 1}); err != nil {
		t.Fatal(err)
	}
	if code := elect(1); code != 0 {
		t.Fatalf("unclean election with the broker back: %d", code)
	}
	var p eventlog.Partition
	b.meta.View(func(s *eventlog.State) { p = s.Topics["t"].Partitions[0] })
	if p.Leader != 1 || p.LeaderEpoch != 2 {
		t.Fatalf("after the election: leader %d at epoch %d, want 1 at 2", p.Leader, p.LeaderEpoch)
	}
	if code := elect(0); code != kerr.ElectionNotNeeded.Code {
		t.Errorf("preferred election after: %d", code)
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = 2, 7
	if resp, _ := electLeaders(b, req); resp.(*kmsg.ElectLeadersResponse).ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("election type 7: %+v", resp)
	}
}
