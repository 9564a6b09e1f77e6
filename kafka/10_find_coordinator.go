package kafka

// FindCoordinator, versions 0-6 (v4: several keys at once): one broker
// coordinates every group (this node alone; in a cluster the registered
// broker with the lowest id, COORDINATOR_NOT_AVAILABLE while it is fenced).
// The same broker coordinates every transactional id (kafka/txn), beside
// the offsets its transactions commit. Share groups (key type 2, v6) are
// not served: INVALID_REQUEST, as from a Kafka broker with share groups
// off, and so is an unknown key type.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.FindCoordinator.Int16(), 0, 6, serve(findCoordinator))
}

func findCoordinator(b *Broker, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrFindCoordinatorResponse()
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Host, c.Port = -1, "", -1
		if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
			msg := fmt.Sprintf("coordinator type %d is not served: only groups (0) and transactions (1)", req.CoordinatorType)
			c.ErrorCode, c.ErrorMessage = kerr.InvalidRequest.Code, &msg
		} else if id, br := b.coordinator(); b.cfg.Cluster == nil {
			c.NodeID, c.Host, c.Port = b.cfg.NodeID, b.cfg.Host, b.cfg.Port
		} else if br == nil || br.Fenced {
			msg := fmt.Sprintf("the group coordinator, broker %d, is fenced (down for longer than --fence-after): groups wait until it is back", id)
			if br == nil {
				msg = "no broker is registered yet: the cluster has no group coordinator"
			}
			c.ErrorCode, c.ErrorMessage = kerr.CoordinatorNotAvailable.Code, &msg
		} else {
			c.NodeID = id
			c.Host, c.Port, _ = endpoint(br)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return resp, nil
}
