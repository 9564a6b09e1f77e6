package kafka

// Heartbeat, versions 0-4: keeps a member's session alive; answers
// REBALANCE_IN_PROGRESS when the member must rejoin, ILLEGAL_GENERATION or
// UNKNOWN_MEMBER_ID when it is no longer part of the group.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.Heartbeat.Int16(), 0, 4, serve(func(b *Broker, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
		return b.groups.Heartbeat(req), nil
	}))
}
