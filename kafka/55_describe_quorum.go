package kafka

// DescribeQuorum, versions 0-2: the controller quorum, which elects the
// controller and holds the metadata log, __chronik_metadata-0 (Kafka's
// tools ask for __cluster_metadata-0, taken as the same): the controller
// and its epoch, the commit point as the high watermark, the voters and
// the brokers that are not voters (observers), each with the log end it
// has acknowledged and when, as the controller knows them (-1 where it
// does not). Answered by the controller: another broker
// passes the request on, and answers NOT_LEADER_OR_FOLLOWER when there is
// no controller to pass it to. v2 lists each voter's endpoint.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.DescribeQuorum.Int16(), 0, 2, serve(describeQuorum))
}

// kafkaMetadataTopic is the name Kafka gives its metadata log.
const kafkaMetadataTopic = "__cluster_metadata"

func describeQuorum(b *Broker, req *kmsg.DescribeQuorumRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	q, leading := b.quorum()
	end, _ := b.meta.End()
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeQuorumResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case t.Topic != eventlog.TopicName && t.Topic != kafkaMetadataTopic || p.Partition != 0:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !leading:
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = q.Leader, q.Epoch, b.meta.Committed()
				for _, id := range q.Voters {
					rp.CurrentVoters = append(rp.CurrentVoters, replicaState(q, id, end))
				}
				for _, id := range q.Observers {
					rp.Observers = append(rp.Observers, replicaState(q, id, end))
				}
			}
			if rp.ErrorCode != 0 {
				rp.LeaderID, rp.LeaderEpoch = -1, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if req.Version >= 2 && leading {
		b.meta.View(func(s *eventlog.State) {
			for _, id := range q.Voters {
				br := s.Brokers[id]
				if br == nil {
					continue
				}
				n := kmsg.NewDescribeQuorumResponseNode()
				n.NodeID = id
				for _, ep := range br.Endpoints {
					l := kmsg.NewDescribeQuorumResponseNodeListener()
					l.Name, l.Host, l.Port = ep.Listener, ep.Host, uint16(ep.Port)
					n.Listeners = append(n.Listeners, l)
				}
				resp.Nodes = append(resp.Nodes, n)
			}
		})
	}
	return resp, nil
}

// quorum is the controller quorum as this node knows it, and whether this
// node is its leader (the controller).
func (b *Broker) quorum() (Quorum, bool) {
	if b.cfg.Cluster != nil {
		_, self := b.cfg.Cluster.Controller()
		return b.cfg.Cluster.Quorum(), self
	}
	// A single node is the quorum.
	q := Quorum{Leader: b.cfg.NodeID, Voters: []int32{b.cfg.NodeID}}
	b.meta.View(func(s *eventlog.State) { q.Epoch = int32(s.Controller.Term) })
	return q, true
}

// replicaState is a quorum member's state as the controller, q's leader,
// knows it: its own log end is end.
func replicaState(q Quorum, id int32, end int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	rs.ReplicaID, rs.LogEndOffset = id, -1
	if id == q.Leader {
		rs.LogEndOffset = end // the timestamps stay -1 for the leader
		return rs
	}
	if r, ok := q.Replicas[id]; ok {
		rs.LogEndOffset = r.LogEnd
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = unixMilliOr(r.LastFetch), unixMilliOr(r.LastCaughtUp)
	}
	return rs
}

// unixMilliOr is t in Unix milliseconds, or -1 for the zero time.
func unixMilliOr(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}
