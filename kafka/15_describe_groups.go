package kafka

// DescribeGroups, versions 0-6: state, protocol and members of each group
// (metadata and assignments only for a Stable group, as Kafka); an unknown
// group is "Dead", from v6 with GROUP_ID_NOT_FOUND (KIP-1043), before
// without error. Authorized operations are not computed.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/kafka/group"
)

func init() {
	register(kmsg.DescribeGroups.Int16(), 0, 6, serve(func(b *Broker, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrDescribeGroupsResponse()
		for _, name := range req.Groups {
			g := b.groups.Describe(name)
			if req.Version >= 6 && g.ErrorCode == 0 && g.State == group.Dead.String() {
				msg := fmt.Sprintf("group %s not found", name)
				g.ErrorCode, g.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}))
}
