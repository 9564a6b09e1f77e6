package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/segment"
)

// appended is a write of n records to the offsets partition: its first
// offset, and how to wait for it to be durable.
type appended struct {
	a   *segment.Appended
	n   int
	err error
}

func (p appended) wait() error {
	if p.err != nil {
		return p.err
	}
	return p.a.Wait()
}

// waitAll waits for every write in order and returns the first error.
func waitAll(writes []appended) error {
	for _, w := range writes {
		if err := w.wait(); err != nil {
			return err
		}
	}
	return nil
}

// write appends records as one batch, synced before Wait returns. The
// caller holds c.mu, so the log's order is the order of the changes.
func (c *Coordinator) write(recs []segment.Record, now time.Time) appended {
	body := segment.AppendRecords(nil, recs)
	a, err := c.log.Append(segment.BuildBatch(body, len(recs), segment.CodecNone, now.UnixMilli()), 0, -1)
	return appended{a: a, n: len(recs), err: err}
}

// writeBatches writes recs with write, in order, in batches the partition
// accepts however many there are (statelog.Split).
func writeBatches(write func([]segment.Record, time.Time) appended, recs []segment.Record, now time.Time) []appended {
	var out []appended
	for _, batch := range statelog.Split(recs) {
		out = append(out, write(batch, now))
	}
	return out
}

func groupKey(name string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version, k.Group = 2, name
	return k.AppendTo(nil)
}

func offsetKey(group, topic string, p int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = 1, group, topic, p
	return k.AppendTo(nil)
}

// offsetRecord is the record of a committed offset.
func offsetRecord(group, topic string, p int32, o offset) segment.Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version, v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = 3, o.offset, o.leaderEpoch, o.metadata, o.timestamp
	return segment.Record{Key: offsetKey(group, topic, p), Value: v.AppendTo(nil)}
}

// persistGroup writes the group's metadata record: its generation, members
// and assignments; a tombstone for an empty group without offsets, which
// is then gone.
func (c *Coordinator) persistGroup(g *group, now time.Time) appended {
	rec := segment.Record{Key: groupKey(g.name)}
	if g.state == Empty && len(g.offsets) == 0 && len(g.pending) == 0 {
		delete(c.groups, g.name)
	} else {
		rec.Value = g.metadataValue().AppendTo(nil)
	}
	return c.write([]segment.Record{rec}, now)
}

func (g *group) metadataValue() *kmsg.GroupMetadataValue {
	v := &kmsg.GroupMetadataValue{}
	v.Default()
	v.Version = 3
	v.ProtocolType, v.Generation = g.protocolType, g.generation
	if g.state != Empty {
		p, l := g.protocol, g.leader
		v.Protocol, v.Leader = &p, &l
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.ClientID, vm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			id := m.instanceID
			vm.InstanceID = &id
		}
		vm.RebalanceTimeoutMillis = int32(m.rebalance / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.session / time.Millisecond)
		vm.Subscription, vm.Assignment = m.metadata(g.protocol), m.assignment
		v.Members = append(v.Members, vm)
	}
	return v
}

// Commit serves OffsetCommit. The returned function blocks until the
// offsets are durable.
func (c *Coordinator) Commit(req *kmsg.OffsetCommitRequest) func() *kmsg.OffsetCommitResponse {
	sizes := make([]int, len(req.Topics))
	for i, t := range req.Topics {
		sizes[i] = len(t.Partitions)
	}
	errs := newCodes(sizes)
	answer := func() *kmsg.OffsetCommitResponse {
		resp := kmsg.NewPtrOffsetCommitResponse()
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, errs[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	failAll := func(code int16) func() *kmsg.OffsetCommitResponse {
		fillCodes(errs, code)
		return answer
	}
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	if req.Group == "" {
		return failAll(kerr.InvalidGroupID.Code)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		return failAll(kerr.NotCoordinator.Code)
	}
	now := time.Now()
	g := c.groups[req.Group]
	switch {
	case g == nil && generation >= 0:
		// A member of a generation this coordinator does not know.
		return failAll(kerr.IllegalGeneration.Code)
	case g == nil:
		g = newGroup(req.Group, now) // offsets without group management
	case generation < 0 && g.state == Empty:
	case g.state == CompletingRebalance:
		return failAll(kerr.RebalanceInProgress.Code)
	default:
		m, code := g.checkMember(req.MemberID, req.InstanceID, generation)
		if code != 0 {
			return failAll(code)
		}
		c.touch(g, m, now)
	}
	var changes []change
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			ts := now.UnixMilli()
			if req.Version == 1 && p.Timestamp >= 0 {
				ts = p.Timestamp
			}
			epoch := int32(-1)
			if req.Version >= 6 {
				epoch = p.LeaderEpoch
			}
			ch := change{i, j, t.Topic, p.Partition, offset{offset: p.Offset, leaderEpoch: epoch, metadata: meta, timestamp: ts}}
			if c.valid(errs, ch) {
				changes = append(changes, ch)
			}
		}
	}
	if len(changes) == 0 {
		return answer
	}
	c.groups[g.name] = g
	wait := c.writeChanges(g.name, changes, c.write, now, errs, func(ch change) {
		if c.groups[g.name] == g { // not deleted since
			g.setOffset(ch.topic, ch.p, ch.o)
		}
	})
	return func() *kmsg.OffsetCommitResponse {
		wait()
		return answer()
	}
}

// setOffset records o unless a later record already set the partition.
func (g *group) setOffset(topic string, p int32, o offset) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = map[int32]offset{}
		g.offsets[topic] = ps
	}
	if old, ok := ps[p]; ok && old.at > o.at {
		return
	}
	ps[p] = o
}

// Fetch serves one group of OffsetFetch: the committed offsets of the
// partitions asked for (all of them when topics is nil), -1 for those with
// none. With requireStable, a partition with an offset pending in a
// transaction is UNSTABLE_OFFSET_COMMIT (the client asks again).
func (c *Coordinator) Fetch(name string, topics []kmsg.OffsetFetchRequestTopic, requireStable bool) ([]kmsg.OffsetFetchResponseTopic, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		return nil, kerr.NotCoordinator.Code
	}
	g := c.groups[name]
	var out []kmsg.OffsetFetchResponseTopic
	if topics == nil {
		if g == nil {
			return nil, 0
		}
		for _, topic := range sortedKeys(g.offsets) {
			t := kmsg.NewOffsetFetchRequestTopic()
			t.Topic = topic
			t.Partitions = append(t.Partitions, sortedKeys(g.offsets[topic])...)
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
			meta := ""
			if g != nil {
				if o, ok := g.offsets[t.Topic][p]; ok {
					rp.Offset, rp.LeaderEpoch, meta = o.offset, o.leaderEpoch, o.metadata
				}
			}
			rp.Metadata = &meta
			if requireStable && c.unstable(name, t.Topic, p) {
				rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out, 0
}

// replay rebuilds groups and offsets from the offsets partition.
func (c *Coordinator) replay() error {
	_, err := c.replayFrom(c.log.StartOffset())
	return err
}

// replayFrom applies the durable records from offset off on, and returns
// the offset after the last.
func (c *Coordinator) replayFrom(off int64) (int64, error) {
	next, err := statelog.Replay(c.log, off, c.replayBatch)
	if err != nil {
		return next, fmt.Errorf("group: replay %s: %w", Topic, err)
	}
	return next, nil
}

// apply replays one record of the offsets partition.
func (c *Coordinator) apply(r segment.Record) error {
	if len(r.Key) < 2 {
		return errors.New("record key too short for a version")
	}
	switch version := int16(binary.BigEndian.Uint16(r.Key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("offset key: %w", err)
		}
		g := c.groups[k.Group]
		if r.Value == nil {
			if g != nil {
				delete(g.offsets[k.Topic], k.Partition)
				if len(g.offsets[k.Topic]) == 0 {
					delete(g.offsets, k.Topic)
				}
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("offset value: %w", err)
		}
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CommitTimestamp))
			c.groups[k.Group] = g
		}
		epoch := int32(-1)
		if v.Version >= 3 {
			epoch = v.LeaderEpoch
		}
		g.setOffset(k.Topic, k.Partition, offset{at: r.Offset, offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, timestamp: v.CommitTimestamp})
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("group key: %w", err)
		}
		if r.Value == nil {
			delete(c.groups, k.Group)
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("group value: %w", err)
		}
		g := c.groups[k.Group]
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CurrentStateTimestamp))
			c.groups[k.Group] = g
		}
		g.restore(&v)
	default:
		// Kafka's later record types (transactions, new groups); skipped.
	}
	return nil
}

// restore sets a group's membership from its stored metadata: Stable with
// the stored assignments, or Empty.
func (g *group) restore(v *kmsg.GroupMetadataValue) {
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	g.protocol, g.leader = "", ""
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	clear(g.members)
	clear(g.instances)
	g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	g.state = Empty
	for _, vm := range v.Members {
		m := &member{id: vm.MemberID, clientID: vm.ClientID, clientHost: vm.ClientHost, protocolType: v.ProtocolType,
			session: ms(vm.SessionTimeoutMillis), rebalance: ms(vm.RebalanceTimeoutMillis), assignment: vm.Assignment}
		if m.session <= 0 || m.rebalance <= 0 {
			continue
		}
		m.protocols = []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}}
		if vm.InstanceID != nil {
			m.instanceID = *vm.InstanceID
			g.instances[m.instanceID] = m.id
		}
		g.members[m.id] = m
	}
	if len(g.members) > 0 && g.members[g.leader] != nil {
		g.state = Stable
	} else {
		clear(g.members)
		clear(g.instances)
	}
}

func sortedKeys[K int32 | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
