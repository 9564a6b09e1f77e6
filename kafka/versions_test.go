package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

// serveAt serves req at version v, as a connection would.
func serveAt(t *testing.T, b *Broker, req kmsg.Request, v int16) kmsg.Response {
	t.Helper()
	req.SetVersion(v)
	r := handlers[req.Key()].serve(b, &reqContext{}, req)
	resp, err := r.resp, r.err
	if r.wait != nil {
		resp, err = r.wait()
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestNewerVersions: what the newest versions of FindCoordinator,
// DescribeGroups, ApiVersions and DescribeCluster change, and only from
// them.
func TestNewerVersions(t *testing.T) {
	b, _ := brokerForTest(t, t.TempDir())

	// FindCoordinator v6: share groups (key type 2) are not served.
	for _, tc := range []struct {
		typ  int8
		code int16
	}{{0, 0}, {1, 0}, {2, kerr.InvalidRequest.Code}, {7, kerr.InvalidRequest.Code}} {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorType, fc.CoordinatorKeys = tc.typ, []string{"g"}
		c := serveAt(t, b, fc, 6).(*kmsg.FindCoordinatorResponse).Coordinators[0]
		if c.ErrorCode != tc.code || (tc.code == 0) != (c.NodeID == 1) {
			t.Errorf("FindCoordinator of key type %d: code %d, node %d; want code %d", tc.typ, c.ErrorCode, c.NodeID, tc.code)
		}
	}

	// DescribeGroups v6: an unknown group is GROUP_ID_NOT_FOUND; before,
	// Dead without error.
	for v, code := range map[int16]int16{5: 0, 6: kerr.GroupIDNotFound.Code} {
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups = []string{"nobody"}
		g := serveAt(t, b, dg, v).(*kmsg.DescribeGroupsResponse).Groups[0]
		if g.ErrorCode != code || g.State != "Dead" {
			t.Errorf("DescribeGroups v%d of an unknown group: code %d, state %q; want code %d, Dead", v, g.ErrorCode, g.State, code)
		}
	}

	// ApiVersions v5 (KIP-1242): the cluster and node the client expects.
	for _, tc := range []struct {
		v       int16
		cluster *string
		node    int32
		code    int16
	}{
		{5, nil, -1, 0},
		{5, kmsg.StringPtr("test"), 1, 0},
		{5, kmsg.StringPtr("other"), 1, kerr.RebootstrapRequired.Code},
		{5, kmsg.StringPtr("test"), 2, kerr.RebootstrapRequired.Code},
		{5, kmsg.StringPtr("test"), -1, kerr.InvalidRequest.Code},
		{5, nil, 1, kerr.InvalidRequest.Code},
		{4, kmsg.StringPtr("other"), 2, 0},
	} {
		av := kmsg.NewPtrApiVersionsRequest()
		av.ClusterID, av.NodeID = tc.cluster, tc.node
		resp := serveAt(t, b, av, tc.v).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != tc.code || (tc.code == 0) != (len(resp.ApiKeys) > 0) {
			t.Errorf("ApiVersions v%d expecting cluster %v, node %d: code %d, %d keys; want code %d", tc.v, tc.cluster, tc.node, resp.ErrorCode, len(resp.ApiKeys), tc.code)
		}
	}

	// DescribeCluster: the brokers (v2: fenced ones too, if asked), the
	// controllers (endpoint type 2: the voters), or an unknown type refused.
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 2, Endpoints: []eventlog.Endpoint{{Host: "127.0.0.1", Port: 9999}}}, &eventlog.BrokerFenced{BrokerID: 2}); err != nil {
		t.Fatal(err)
	}
	brokers := func(resp *kmsg.DescribeClusterResponse) (ids []int32, fenced []bool) {
		for _, br := range resp.Brokers {
			ids, fenced = append(ids, br.NodeID), append(fenced, br.IsFenced)
		}
		return ids, fenced
	}
	for _, tc := range []struct {
		v            int16
		typ          int8
		withFenced   bool
		code         int16
		ids          string
		fencedBroker string
	}{
		{0, 0, false, 0, "[1]", "[false]"},
		{2, 1, false, 0, "[1]", "[false]"},
		{2, 1, true, 0, "[1 2]", "[false true]"},
		{1, 2, false, 0, "[1]", "[false]"},
		{2, 3, false, kerr.UnsupportedEndpointType.Code, "[]", "[]"},
	} {
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.EndpointType, dc.IncludeFencedBrokers = tc.typ, tc.withFenced
		resp := serveAt(t, b, dc, tc.v).(*kmsg.DescribeClusterResponse)
		ids, fenced := brokers(resp)
		if resp.ErrorCode != tc.code || fmt.Sprint(ids) != tc.ids || fmt.Sprint(fenced) != tc.fencedBroker {
			t.Errorf("DescribeCluster v%d, endpoint type %d, fenced %v: code %d, brokers %v %v", tc.v, tc.typ, tc.withFenced, resp.ErrorCode, ids, fenced)
		}
	}
}
