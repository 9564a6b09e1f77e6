package kafka

// JoinGroup, versions 0-9: the classic group protocol's join phase (see
// package group). From v4 a new member is first given its id with
// MEMBER_ID_REQUIRED (KIP-394); v5 adds static members (group.instance.id).
// The answer waits until every member has rejoined or the rebalance
// timeout passes; the connection serves its next requests meanwhile.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.JoinGroup.Int16(), 0, 9, serveLater(func(b *Broker, rc *reqContext, req *kmsg.JoinGroupRequest) func() (kmsg.Response, error) {
		wait := b.groups.Join(req, rc.clientID, "/"+rc.host)
		return func() (kmsg.Response, error) { return wait(), nil }
	}))
}
