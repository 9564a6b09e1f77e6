package kafka

// OffsetCommit, versions 0-9: committed offsets are records of the
// internal partition __consumer_offsets-0, answered once durable. A member
// commits for its generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// REBALANCE_IN_PROGRESS otherwise); generation -1 commits for a group
// without members (standalone consumers, admin tools). Partitions that do
// not exist are UNKNOWN_TOPIC_OR_PARTITION; metadata over 4 KiB is
// OFFSET_METADATA_TOO_LARGE. v9, the first a KIP-848 consumer may send,
// means for a classic group what v8 means (its generation, not a member
// epoch), as in Kafka. v10 names topics by id (topic_ids.go): an id no
// topic has is UNKNOWN_TOPIC_ID for each of its partitions.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.OffsetCommit.Int16(), 0, 10, serveLater(func(b *Broker, _ *reqContext, req *kmsg.OffsetCommitRequest) func() (kmsg.Response, error) {
		if req.Version >= 10 {
			return commitByID(b, req)
		}
		b.settleFor(req)
		wait := b.groups.Commit(req)
		return func() (kmsg.Response, error) { return wait(), nil }
	}))
}

// commitByID serves an OffsetCommit that names its topics by id: the
// coordinator commits those whose ids name a topic, by name; the others
// are UNKNOWN_TOPIC_ID. The answer keeps the request's order.
func commitByID(b *Broker, req *kmsg.OffsetCommitRequest) func() (kmsg.Response, error) {
	named := *req
	named.Topics = nil
	known := make([]bool, len(req.Topics))
	for i, t := range req.Topics {
		if name, ok := b.topicName(t.TopicID); ok {
			t.Topic, known[i] = name, true
			named.Topics = append(named.Topics, t)
		}
	}
	b.settleFor(&named)
	wait := b.groups.Commit(&named)
	return func() (kmsg.Response, error) {
		committed := wait()
		resp := kmsg.NewPtrOffsetCommitResponse()
		next := 0
		for i, t := range req.Topics {
			var rt kmsg.OffsetCommitResponseTopic
			if known[i] {
				rt, next = committed.Topics[next], next+1
			} else {
				rt = kmsg.NewOffsetCommitResponseTopic()
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownTopicID.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
			}
			rt.TopicID = t.TopicID
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
}

// settleFor settles before a commit names a partition the metadata does
// not hold yet (settleMissing).
func (b *Broker) settleFor(req *kmsg.OffsetCommitRequest) {
	b.settleMissing(func(yield func(string, int32) bool) {
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				if !yield(t.Topic, p.Partition) {
					return
				}
			}
		}
	})
}
