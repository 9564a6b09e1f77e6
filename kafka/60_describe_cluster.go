package kafka

// DescribeCluster, versions 0-1: the unfenced brokers, the controller and
// the cluster id, as Metadata reports them. Authorized operations are not
// computed (-2147483648, "not requested" in Kafka's terms).

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.DescribeCluster.Int16(), 0, 1, serve(describeCluster))
}

func describeCluster(b *Broker, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.ClusterID = b.cfg.ClusterID
	resp.ClusterAuthorizedOperations = -2147483648
	b.meta.View(func(s *eventlog.State) {
		resp.ControllerID = s.Controller.Leader
		for id, br := range s.Brokers {
			if br.Fenced {
				continue
			}
			rb := kmsg.NewDescribeClusterResponseBroker()
			rb.NodeID = id
			if len(br.Endpoints) > 0 {
				rb.Host, rb.Port = br.Endpoints[0].Host, br.Endpoints[0].Port
			}
			if br.Rack != "" {
				rack := br.Rack
				rb.Rack = &rack
			}
			resp.Brokers = append(resp.Brokers, rb)
		}
	})
	sort.Slice(resp.Brokers, func(i, j int) bool { return resp.Brokers[i].NodeID < resp.Brokers[j].NodeID })
	return resp, nil
}
