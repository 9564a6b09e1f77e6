package kafka

// OffsetFetch, versions 0-9 (v8: several groups at once): the committed
// offsets of the partitions asked for, or of every partition the group
// committed when the topics are null; -1 for partitions without a commit.
// RequireStable (v7+): a partition whose offset a transaction holds pending
// is UNSTABLE_OFFSET_COMMIT, which clients retry. v9's member id and epoch
// are a KIP-848 consumer's; a classic group, as in Kafka, does not check
// them. v10's topic ids are not served.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.OffsetFetch.Int16(), 0, 9, serve(offsetFetch))
}

func offsetFetch(b *Broker, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrOffsetFetchResponse()
	if req.Version < 8 {
		topics := req.Topics
		if req.Version < 2 && topics == nil {
			topics = []kmsg.OffsetFetchRequestTopic{} // null means all only from v2
		}
		resp.Topics, resp.ErrorCode = b.groups.Fetch(req.Group, topics, req.RequireStable)
		return resp, nil
	}
	for _, rg := range req.Groups {
		var topics []kmsg.OffsetFetchRequestTopic
		if rg.Topics != nil {
			topics = []kmsg.OffsetFetchRequestTopic{}
			for _, t := range rg.Topics {
				topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		got, code := b.groups.Fetch(rg.Group, topics, req.RequireStable)
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, code
		for _, t := range got {
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Topic = t.Topic
			for _, p := range t.Partitions {
				gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				gt.Partitions = append(gt.Partitions, gp)
			}
			g.Topics = append(g.Topics, gt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
