package kafka

// SyncGroup, versions 0-5: the leader sends the assignments, every member
// gets its own. A follower's answer waits for the leader's SyncGroup; the
// leader's for the group metadata record to be durable.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.SyncGroup.Int16(), 0, 5, serveLater(func(b *Broker, _ *reqContext, req *kmsg.SyncGroupRequest) func() (kmsg.Response, error) {
		wait := b.groups.Sync(req)
		return func() (kmsg.Response, error) { return wait(), nil }
	}))
}
