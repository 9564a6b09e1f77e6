package kafka

// ListGroups, versions 0-5: every group, with its state (v4, filtered by
// StatesFilter) and type (v5: all groups are "classic"; TypesFilter).

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.ListGroups.Int16(), 0, 5, serve(listGroups))
}

func listGroups(b *Broker, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrListGroupsResponse()
	if !matchesFilter(req.TypesFilter, "classic") {
		return resp, nil
	}
	for _, g := range b.groups.List() {
		if !matchesFilter(req.StatesFilter, g.State.String()) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.Name, g.ProtocolType, g.State.String(), "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}

// matchesFilter: an empty filter matches everything; names compare without
// case, as Kafka's.
func matchesFilter(filter []string, v string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.EqualFold(f, v) {
			return true
		}
	}
	return false
}
