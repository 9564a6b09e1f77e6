// Package group is the consumer-group coordinator of a broker: the classic
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with its
// session and rebalance timeouts, and committed offsets.
//
// Offsets and group metadata are records of the internal partition
// __consumer_offsets-0, in Kafka's own formats (kmsg.OffsetCommitKey and
// Value, kmsg.GroupMetadataKey and Value; a null value deletes), so that
// Kafka's tools can read them. A commit is answered once its record is
// durable; at start the coordinator replays the partition. Group metadata is
// written when a generation completes (and when a group empties), so that
// after a restart the members carry on without rebalancing.
package group

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/segment"
)

// Topic is the internal topic of committed offsets; the coordinator uses
// its partition 0.
const Topic = "__consumer_offsets"

// Config holds the coordinator's limits, Kafka's group.* broker configs.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min/max.session.timeout.ms: 6 s, 30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first join of an empty group
	// waits for more members (group.initial.rebalance.delay.ms: 3 s).
	InitialRebalanceDelay time.Duration
	// MaxGroupSize limits the members of a group (group.max.size); 0 is no
	// limit.
	MaxGroupSize int
	// PartitionExists reports whether a topic partition exists: offsets
	// are committed only for those. Nil accepts any.
	PartitionExists func(topic string, partition int32) bool
	// IsCoordinator reports whether this node coordinates the groups now
	// (in a cluster, one broker does); nil means always. Elsewhere every
	// request is answered NOT_COORDINATOR.
	IsCoordinator func() bool
	// OffsetsRetention is how long committed offsets are kept once nothing
	// uses them (offsets.retention.minutes: 7 days); see ExpireOffsets.
	// 0 is DefaultOffsetsRetention.
	OffsetsRetention time.Duration
	// CompactBytes is the size from which the offsets partition is
	// compacted (Compact); 0 is DefaultCompactBytes.
	CompactBytes int64
	// InTransaction reports whether producer pid, at epoch, has an open
	// transaction that added the offsets partition (AddOffsetsToTxn): only
	// then may it commit offsets in it (TxnOffsetCommit), so that a marker
	// is sure to end them. Nil refuses every TxnOffsetCommit.
	InTransaction func(pid int64, epoch int16) bool
	Logger        *slog.Logger
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{MinSessionTimeout: 6 * time.Second, MaxSessionTimeout: 30 * time.Minute, InitialRebalanceDelay: 3 * time.Second}
}

// MaxMetadataBytes is the largest offset metadata string accepted
// (offset.metadata.max.bytes).
const MaxMetadataBytes = 4096

// Coordinator coordinates the groups of a broker.
type Coordinator struct {
	cfg Config
	log *segment.Log
	lg  *slog.Logger

	mu     sync.Mutex
	groups map[string]*group
	closed bool
	// pending holds offsets committed in transactions not yet ended, by
	// producer id (txn.go).
	pending map[int64]*pendingTxn
	seq     uint64 // join order, for choosing a leader

	compactor statelog.Compactor
}

// Open replays the offsets partition l and returns its coordinator. Members
// of restored groups get a full session timeout from now.
func Open(l *segment.Log, cfg Config) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{cfg: cfg, log: l, lg: cfg.Logger, groups: map[string]*group{}}
	c.compactor = statelog.Compactor{Log: l, MinBytes: cfg.CompactBytes}
	if c.compactor.MinBytes <= 0 {
		c.compactor.MinBytes = DefaultCompactBytes
	}
	if err := c.replay(); err != nil {
		return nil, err
	}
	now := time.Now()
	for _, g := range c.groups {
		for _, m := range g.members {
			c.touch(g, m, now)
		}
	}
	return c, nil
}

func (c *Coordinator) active() bool {
	return c.cfg.IsCoordinator == nil || c.cfg.IsCoordinator()
}

// Log is the offsets partition.
func (c *Coordinator) Log() *segment.Log { return c.log }

// Close answers every JoinGroup and SyncGroup that waits with
// NOT_COORDINATOR (clients look for the coordinator again) and stops the
// timers. Commits in flight finish.
func (c *Coordinator) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, g := range c.groups {
		g.stopTimers()
		for _, m := range g.members {
			if m.timer != nil {
				m.timer.Stop()
			}
			answerJoin(m, kerr.NotCoordinator.Code)
			answerSync(m, kerr.NotCoordinator.Code)
		}
	}
}

func (g *group) stopTimers() {
	g.rebalanceSeq++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	if g.delayTimer != nil {
		g.delayTimer.Stop()
		g.delayTimer = nil
	}
	g.delayUntil = time.Time{}
}

func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	if len(clientID) > 64 {
		clientID = clientID[:64]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

func ms(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

// touch records a sign of life from m: its session restarts.
func (c *Coordinator) touch(g *group, m *member, now time.Time) {
	m.deadline = now.Add(m.session)
	if m.timer == nil {
		m.timer = time.AfterFunc(m.session, func() { c.expire(g, m) })
	}
}

// expire removes a member whose session ran out without a request.
func (c *Coordinator) expire(g *group, m *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.groups[g.name] != g || g.members[m.id] != m {
		return
	}
	now := time.Now()
	if m.joinWait != nil || m.syncWait != nil {
		// A member waiting for the group is alive; the rebalance timeout
		// bounds the wait.
		m.timer.Reset(m.session)
		return
	}
	if now.Before(m.deadline) {
		m.timer.Reset(m.deadline.Sub(now))
		return
	}
	c.lg.Info("group member's session expired", "group", g.name, "member", m.id, "session_timeout", m.session)
	c.removeMember(g, m, kerr.UnknownMemberID.Code)
	c.afterRemoval(g, now)
}

func answerJoin(m *member, code int16) {
	if m.joinWait == nil {
		return
	}
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, m.id
	m.joinWait <- resp
	m.joinWait = nil
}

func answerSync(m *member, code int16) {
	if m.syncWait == nil {
		return
	}
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	m.syncWait <- resp
	m.syncWait = nil
}

// removeMember takes m out of g, answering its waiting requests with code.
func (c *Coordinator) removeMember(g *group, m *member, code int16) {
	answerJoin(m, code)
	answerSync(m, code)
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(g.members, m.id)
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// afterRemoval moves the group on after members left: a rebalance, or the
// end of the join phase that waited for them.
func (c *Coordinator) afterRemoval(g *group, now time.Time) {
	switch g.state {
	case Stable, CompletingRebalance:
		c.prepareRebalance(g, now)
	case PreparingRebalance:
		c.tryCompleteJoin(g, now)
	}
}

// prepareRebalance starts a join phase: members must rejoin within the
// longest rebalance timeout. An empty group's first join waits the initial
// rebalance delay for more members.
func (c *Coordinator) prepareRebalance(g *group, now time.Time) {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			answerSync(m, kerr.RebalanceInProgress.Code)
		}
	}
	wasEmpty := g.state == Empty
	g.stopTimers()
	g.setState(PreparingRebalance, now)
	seq := g.rebalanceSeq
	timeout := g.maxRebalance()
	g.rebalanceTimer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed && g.rebalanceSeq == seq && g.state == PreparingRebalance {
			c.completeJoin(g, time.Now())
		}
	})
	if wasEmpty && c.cfg.InitialRebalanceDelay > 0 {
		g.delayUntil = now.Add(min(c.cfg.InitialRebalanceDelay, timeout))
		g.delayLimit = now.Add(timeout)
		c.scheduleDelay(g, seq, g.delayUntil.Sub(now))
	}
	c.tryCompleteJoin(g, now)
}

func (c *Coordinator) scheduleDelay(g *group, seq uint64, d time.Duration) {
	g.delayTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || g.rebalanceSeq != seq || g.state != PreparingRebalance {
			return
		}
		now := time.Now()
		if now.Before(g.delayUntil) { // extended by members that joined since
			c.scheduleDelay(g, seq, g.delayUntil.Sub(now))
			return
		}
		g.delayUntil = time.Time{}
		c.tryCompleteJoin(g, now)
	})
}

func (c *Coordinator) tryCompleteJoin(g *group, now time.Time) {
	if g.state == PreparingRebalance && g.allJoined() && !now.Before(g.delayUntil) {
		c.completeJoin(g, now)
	}
}

// completeJoin ends a join phase: members that did not rejoin are out, the
// generation advances, and every waiting JoinGroup is answered (the leader's
// with the members and their metadata). The members then have a rebalance
// timeout to send SyncGroup.
func (c *Coordinator) completeJoin(g *group, now time.Time) {
	g.stopTimers()
	for _, m := range g.members {
		if m.joinWait == nil {
			c.lg.Info("group member did not rejoin in time", "group", g.name, "member", m.id)
			c.removeMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	clear(g.pending)
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		c.persistGroup(g, now)
		return
	}
	if g.leader == "" {
		var first *member
		for _, m := range g.members {
			if first == nil || m.joinSeq < first.joinSeq {
				first = m
			}
		}
		g.leader = first.id
	}
	g.protocol = g.selectProtocol(g.members[g.leader])
	g.setState(CompletingRebalance, now)
	for _, m := range g.members {
		m.isNew, m.synced = false, false
		resp := g.joinResponse(m)
		m.joinWait <- resp
		m.joinWait = nil
		c.touch(g, m, now)
	}
	seq := g.rebalanceSeq
	g.rebalanceTimer = time.AfterFunc(g.maxRebalance(), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || g.rebalanceSeq != seq || g.state != CompletingRebalance {
			return
		}
		// Kafka's pending-sync timeout: members that never sent SyncGroup
		// (or a leader that never assigned) are out.
		now := time.Now()
		for _, m := range g.members {
			if !m.synced || m.id == g.leader {
				c.lg.Info("group member did not sync in time", "group", g.name, "member", m.id)
				c.removeMember(g, m, kerr.UnknownMemberID.Code)
			}
		}
		c.prepareRebalance(g, now)
	})
}

func (g *group) joinResponse(m *member) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.LeaderID, resp.MemberID = g.leader, m.id
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			if o.instanceID != "" {
				id := o.instanceID
				rm.InstanceID = &id
			}
			rm.ProtocolMetadata = o.metadata(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
