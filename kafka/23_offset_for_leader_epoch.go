package kafka

// OffsetForLeaderEpoch, versions 0-4: for each partition, the largest
// leader epoch of its log not above the one asked and the offset where
// that epoch ends (leader_epoch.go), which consumers compare with their
// position to find a log cut below it (KIP-320). The current leader
// epoch (v2+) is checked: FENCED_LEADER_EPOCH when older, and
// UNKNOWN_LEADER_EPOCH when newer than this node's. Only the leader
// answers (NOT_LEADER_OR_FOLLOWER elsewhere); the replica id (v3+) is
// not looked at: there are no follower replicas yet.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.OffsetForLeaderEpoch.Int16(), 0, 4, serve(func(b *Broker, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				rp.Partition = p.Partition
				part, code := b.openPartition(t.Topic, p.Partition)
				if code == 0 {
					code = part.checkEpoch(p.CurrentLeaderEpoch)
				}
				if code == 0 {
					rp.LeaderEpoch, rp.EndOffset, code = part.endOffsetFor(p.LeaderEpoch)
				}
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}))
}
