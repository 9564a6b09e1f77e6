package kafka

// DeleteGroups, versions 0-2: an empty group and its committed offsets are
// deleted (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP otherwise), durably before
// the answer.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DeleteGroups.Int16(), 0, 2, serveLater(func(b *Broker, _ *reqContext, req *kmsg.DeleteGroupsRequest) func() (kmsg.Response, error) {
		waits := make([]func() int16, len(req.Groups))
		for i, name := range req.Groups {
			waits[i] = b.groups.Delete(name)
		}
		return func() (kmsg.Response, error) {
			resp := kmsg.NewPtrDeleteGroupsResponse()
			for i, name := range req.Groups {
				g := kmsg.NewDeleteGroupsResponseGroup()
				g.Group, g.ErrorCode = name, waits[i]()
				resp.Groups = append(resp.Groups, g)
			}
			return resp, nil
		}
	}))
}
