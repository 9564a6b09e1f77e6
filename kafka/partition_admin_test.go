package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestElectLeadersWithKadm: partitions led by their preferred replica need
// no election, asked by name or for all; an unknown one is
// UNKNOWN_TOPIC_OR_PARTITION.
func TestElectLeadersWithKadm(t *testing.T) {
	ctx, adm := adminForTest(t)
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

// TestPartitionReassignments: kadm lists no reassignment in progress;
// assigning a partition its own replicas again is done; moving it, or
// cancelling, or bad replicas, or a changed replica count when forbidden,
// each gets its error and changes nothing.
func TestPartitionReassignments(t *testing.T) {
	ctx, adm := adminForTest(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "r"); err != nil {
		t.Fatal(err)
	}
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"r": {0: {}}})
	if err != nil || len(listed) != 0 {
		t.Fatalf("list: %v %v, want none", listed, err)
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("r", 0, []int32{1})
	req.CancelAssign("r", 1)
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := res["r"][0].Err; err != nil {
		t.Errorf("the current replicas again: %v", err)
	}
	if err := res["r"][1].Err; !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("cancel for a partition that does not exist: %v", err)
	}
	for _, tc := range []struct {
		replicas []int32
		forbidRF bool
		want     *kerr.Error
	}{
		{nil, false, kerr.NoReassignmentInProgress},
		{[]int32{}, false, kerr.InvalidReplicaAssignment},
		{[]int32{7}, false, kerr.InvalidReplicaAssignment},
		{[]int32{1, 1}, false, kerr.InvalidReplicaAssignment},
		{[]int32{1, 7}, true, kerr.InvalidReplicaAssignment},
	} {
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign("r", 0, tc.replicas)
		c := ctx
		if tc.forbidRF {
			c = kadm.ForbidAlterRf(ctx)
		}
		res, err := adm.AlterPartitionAssignments(c, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := res["r"][0].Err; !errors.Is(err, tc.want) {
			t.Errorf("assign %v (replication factor change forbidden: %v): %v, want %v", tc.replicas, tc.forbidRF, err, tc.want)
		}
	}
	md, err := adm.Metadata(ctx, "r")
	if err != nil || len(md.Topics["r"].Partitions[0].Replicas) != 1 || md.Topics["r"].Partitions[0].Replicas[0] != 1 {
		t.Fatalf("replicas after: %+v %v", md.Topics["r"].Partitions, err)
	}
}

// TestReassignWithTwoBrokers: with another broker registered, moving a
// partition there is refused as not supported, or, when the request
// forbids changing the replica count and the count changes,
// INVALID_REPLICATION_FACTOR.
func TestReassignWithTwoBrokers(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 2, Incarnation: eventlog.NewUUID(),
		Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9093}}}); err != nil {
		t.Fatal(err)
	}
	b.meta.View(func(s *eventlog.State) {
		for _, tc := range []struct {
			replicas []int32
			allowRF  bool
			want     int16
		}{
			{[]int32{2}, true, kerr.InvalidReplicaAssignment.Code},
			{[]int32{2}, false, kerr.InvalidReplicaAssignment.Code},
			{[]int32{1, 2}, true, kerr.InvalidReplicaAssignment.Code},
			{[]int32{1, 2}, false, kerr.InvalidReplicationFactor.Code},
			{[]int32{1}, false, 0},
		} {
			if code, msg := reassign(s, "t", 0, tc.replicas, tc.allowRF); code != tc.want {
				t.Errorf("reassign to %v (allow a new count: %v): %d %q, want %d", tc.replicas, tc.allowRF, code, msg, tc.want)
			}
		}
	})
}
