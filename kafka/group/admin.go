package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

// Listed is a group as ListGroups reports it.
type Listed struct {
	Name, ProtocolType string
	State              State
}

// List returns the groups, by name.
func (c *Coordinator) List() []Listed {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Listed, 0, len(c.groups))
	for _, name := range sortedKeys(c.groups) {
		g := c.groups[name]
		out = append(out, Listed{Name: g.name, ProtocolType: g.protocolType, State: g.state})
	}
	return out
}

// Describe serves one group of DescribeGroups. An unknown group is "Dead"
// with no error, as in Kafka. Members' metadata and assignments are given
// only when the group is Stable.
func (c *Coordinator) Describe(name string) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = name
	d.AuthorizedOperations = -2147483648
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		d.ErrorCode = kerr.NotCoordinator.Code
		return d
	}
	g := c.groups[name]
	if g == nil {
		d.State = Dead.String()
		return d
	}
	d.State, d.ProtocolType = g.state.String(), g.protocolType
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			id := m.instanceID
			dm.InstanceID = &id
		}
		if g.state == Stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadata(g.protocol), m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// Delete serves one group of DeleteGroups: an empty group and its offsets
// are deleted (tombstones, durable before the answer).
func (c *Coordinator) Delete(name string) func() int16 {
	code := func(c int16) func() int16 { return func() int16 { return c } }
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		return code(kerr.NotCoordinator.Code)
	}
	g := c.groups[name]
	switch {
	case g == nil:
		return code(kerr.GroupIDNotFound.Code)
	case g.state != Empty || len(g.pending) > 0:
		return code(kerr.NonEmptyGroup.Code)
	}
	var recs []segment.Record
	for _, topic := range sortedKeys(g.offsets) {
		for _, p := range sortedKeys(g.offsets[topic]) {
			recs = append(recs, segment.Record{Key: offsetKey(name, topic, p)})
		}
	}
	recs = append(recs, segment.Record{Key: groupKey(name)})
	g.stopTimers()
	delete(c.groups, name)
	// In batches: a group may have more offsets than one batch may hold.
	writes := writeBatches(c.write, recs, time.Now())
	return func() int16 {
		if err := waitAll(writes); err != nil {
			c.lg.Error("cannot store the deletion of a group", "group", name, "error", err)
			return kerr.CoordinatorNotAvailable.Code
		}
		return 0
	}
}

// DeleteOffsets serves OffsetDelete: committed offsets of partitions the
// group does not consume are deleted.
func (c *Coordinator) DeleteOffsets(req *kmsg.OffsetDeleteRequest) func() *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	done := func() *kmsg.OffsetDeleteResponse { return resp }
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return done
	}
	g := c.groups[req.Group]
	switch {
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return done
	case g.state != Empty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return done
	}
	subscribed := g.subscribedTopics()
	var recs []segment.Record
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if slices.Contains(subscribed, t.Topic) {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[t.Topic][p.Partition]; ok {
				recs = append(recs, segment.Record{Key: offsetKey(g.name, t.Topic, p.Partition)})
				delete(g.offsets[t.Topic], p.Partition)
				if len(g.offsets[t.Topic]) == 0 {
					delete(g.offsets, t.Topic)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		return done
	}
	// In batches, as a commit: tombstones for many partitions may not fit
	// one batch (max.message.bytes).
	writes := writeBatches(c.write, recs, time.Now())
	return func() *kmsg.OffsetDeleteResponse {
		if err := waitAll(writes); err != nil {
			c.lg.Error("cannot store the deletion of offsets", "group", req.Group, "error", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return resp
	}
}

// subscribedTopics are the topics the members of a consumer group
// subscribe to, from their protocol metadata.
func (g *group) subscribedTopics() []string {
	var out []string
	if g.state == Empty || g.protocolType != "consumer" {
		return nil
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadata(g.protocol)); err != nil {
			continue
		}
		out = append(out, meta.Topics...)
	}
	return out
}
