package kafka

// DescribeCluster, versions 0-1: the unfenced brokers, the controller and
// the cluster id, as Metadata reports them. Authorized operations are not
// computed (-2147483648, "not requested" in Kafka's terms).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.DescribeCluster.Int16(), 0, 1, serve(describeCluster))
}

func describeCluster(b *Broker, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.ClusterAuthorizedOperations = -2147483648
	b.meta.View(func(s *eventlog.State) {
		resp.ClusterID = clusterIDOf(s, b.cfg.ClusterID)
		resp.ControllerID = s.Controller.Leader
		for _, br := range liveBrokers(s) {
			rb := kmsg.NewDescribeClusterResponseBroker()
			rb.NodeID = br.ID
			rb.Host, rb.Port, rb.Rack = endpoint(br)
			resp.Brokers = append(resp.Brokers, rb)
		}
	})
	return resp, nil
}
