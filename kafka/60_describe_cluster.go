package kafka

// DescribeCluster, versions 0-2: the unfenced brokers (v2: the fenced
// ones too if asked, marked so), the controller and the cluster id, as
// Metadata reports them. Asked for controller endpoints (v1+, endpoint type
// 2, as kafka-metadata-quorum --bootstrap-controller asks), the registered
// voters, at the Kafka listener that serves DescribeQuorum too; another
// endpoint type is UNSUPPORTED_ENDPOINT_TYPE. Authorized operations are not
// computed (-2147483648, "not requested" in Kafka's terms).

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.DescribeCluster.Int16(), 0, 2, serve(describeCluster))
}

func describeCluster(b *Broker, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.ClusterAuthorizedOperations = -2147483648
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != 1 && req.EndpointType != 2 {
		msg := fmt.Sprintf("endpoint type %d is not served: brokers (1) or controllers (2)", req.EndpointType)
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedEndpointType.Code, &msg
		return resp, nil
	}
	b.meta.View(func(s *eventlog.State) {
		resp.ClusterID = clusterIDOf(s, b.cfg.ClusterID)
		resp.ControllerID = s.Controller.Leader
		brokers := liveBrokers(s)
		switch {
		case req.Version >= 1 && req.EndpointType == 2:
			brokers = nil
			for _, id := range s.Controller.Voters {
				if br := s.Brokers[id]; br != nil {
					brokers = append(brokers, br)
				}
			}
		case req.IncludeFencedBrokers:
			brokers = slices.SortedFunc(maps.Values(s.Brokers), func(a, b *eventlog.Broker) int { return cmp.Compare(a.ID, b.ID) })
		}
		for _, br := range brokers {
			rb := kmsg.NewDescribeClusterResponseBroker()
			rb.NodeID, rb.IsFenced = br.ID, br.Fenced
			rb.Host, rb.Port, rb.Rack = endpoint(br)
			resp.Brokers = append(resp.Brokers, rb)
		}
	})
	return resp, nil
}
