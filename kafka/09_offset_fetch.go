package kafka

// OffsetFetch, versions 0-9 (v8: several groups at once): the committed
// offsets of the partitions asked for, or of every partition the group
// committed when the topics are null; -1 for partitions without a commit.
// RequireStable (v7+): a partition whose offset a transaction holds pending
// is UNSTABLE_OFFSET_COMMIT, which clients retry. v9's member id and epoch
// are a KIP-848 consumer's; a classic group, as in Kafka, does not check
// them. v10 names topics by id (topic_ids.go): an id no topic has is
// UNKNOWN_TOPIC_ID with offset -1 for each of its partitions, and every
// topic the group committed is answered with its id (a topic deleted
// since, which has none, is left out).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.OffsetFetch.Int16(), 0, 10, serve(offsetFetch))
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
	byID := req.Version >= 10
	for _, rg := range req.Groups {
		var topics []kmsg.OffsetFetchRequestTopic
		var known []bool // v10: by the group's topics, whether its id names a topic
		if rg.Topics != nil {
			topics = []kmsg.OffsetFetchRequestTopic{}
			for _, t := range rg.Topics {
				name, ok := t.Topic, true
				if byID {
					name, ok = b.topicName(t.TopicID)
					known = append(known, ok)
				}
				if ok {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: name, Partitions: t.Partitions})
				}
			}
		}
		got, code := b.groups.Fetch(rg.Group, topics, req.RequireStable)
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, code
		switch {
		case code != 0:
		case byID && rg.Topics != nil:
			next := 0
			for i, t := range rg.Topics {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				if known[i] {
					gt, next = groupTopic(got[next]), next+1
				} else {
					for _, p := range t.Partitions {
						gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
						gp.Partition, gp.Offset, gp.Metadata, gp.ErrorCode = p, -1, kmsg.StringPtr(""), kerr.UnknownTopicID.Code
						gt.Partitions = append(gt.Partitions, gp)
					}
				}
				gt.TopicID = t.TopicID
				g.Topics = append(g.Topics, gt)
			}
		case byID:
			b.meta.View(func(s *eventlog.State) {
				for _, t := range got {
					gt := groupTopic(t)
					if gt.TopicID = topicID(s, t.Topic); gt.TopicID != [16]byte{} { // else deleted since: no id to name it by
						g.Topics = append(g.Topics, gt)
					}
				}
			})
		default:
			for _, t := range got {
				g.Topics = append(g.Topics, groupTopic(t))
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// groupTopic is a topic's offsets as a v8+ response's group carries them.
func groupTopic(t kmsg.OffsetFetchResponseTopic) kmsg.OffsetFetchResponseGroupTopic {
	gt := kmsg.NewOffsetFetchResponseGroupTopic()
	gt.Topic = t.Topic
	for _, p := range t.Partitions {
		gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
		gt.Partitions = append(gt.Partitions, gp)
	}
	return gt
}
