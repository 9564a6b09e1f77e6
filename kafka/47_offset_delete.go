package kafka

// OffsetDelete, version 0: deletes a group's committed offsets of
// partitions it does not consume (GROUP_SUBSCRIBED_TO_TOPIC for those it
// does), durably before the answer.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.OffsetDelete.Int16(), 0, 0, serveLater(func(b *Broker, _ *reqContext, req *kmsg.OffsetDeleteRequest) func() (kmsg.Response, error) {
		wait := b.groups.DeleteOffsets(req)
		return func() (kmsg.Response, error) { return wait(), nil }
	}))
}
