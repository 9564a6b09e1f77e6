package kafka

// LeaveGroup, versions 0-5 (v3: several members, by member id or instance
// id, each with its own error): the members leave and the group rebalances
// at once.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.LeaveGroup.Int16(), 0, 5, serve(func(b *Broker, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
		return b.groups.Leave(req), nil
	}))
}
