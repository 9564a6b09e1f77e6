package kafka

// DescribeGroups, versions 0-5: state, protocol and members of each group
// (metadata and assignments only for a Stable group, as Kafka); an unknown
// group is "Dead" without error. Authorized operations are not computed.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DescribeGroups.Int16(), 0, 5, serve(func(b *Broker, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrDescribeGroupsResponse()
		for _, name := range req.Groups {
			resp.Groups = append(resp.Groups, b.groups.Describe(name))
		}
		return resp, nil
	}))
}
