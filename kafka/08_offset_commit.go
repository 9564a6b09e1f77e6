package kafka

// OffsetCommit, versions 0-9: committed offsets are records of the
// internal partition __consumer_offsets-0, answered once durable. A member
// commits for its generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// REBALANCE_IN_PROGRESS otherwise); generation -1 commits for a group
// without members (standalone consumers, admin tools). Partitions that do
// not exist are UNKNOWN_TOPIC_OR_PARTITION; metadata over 4 KiB is
// OFFSET_METADATA_TOO_LARGE. v9, the first a KIP-848 consumer may send,
// means for a classic group what v8 means (its generation, not a member
// epoch), as in Kafka; v10's topic ids are not served.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.OffsetCommit.Int16(), 0, 9, serveLater(func(b *Broker, _ *reqContext, req *kmsg.OffsetCommitRequest) func() (kmsg.Response, error) {
		b.settleFor(req)
		wait := b.groups.Commit(req)
		return func() (kmsg.Response, error) { return wait(), nil }
	}))
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
