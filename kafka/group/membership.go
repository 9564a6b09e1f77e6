package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Join serves JoinGroup. The returned function blocks until the join phase
// completes (or the member is refused) and gives the response.
func (c *Coordinator) Join(req *kmsg.JoinGroupRequest, clientID, clientHost string) func() *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = -1
	resp.MemberID = req.MemberID
	fail := func(code int16) func() *kmsg.JoinGroupResponse {
		resp.ErrorCode = code
		return func() *kmsg.JoinGroupResponse { return resp }
	}
	session := ms(req.SessionTimeoutMillis)
	rebalance := session
	if req.Version >= 1 {
		rebalance = ms(req.RebalanceTimeoutMillis)
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID.Code)
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout.Code)
	case rebalance <= 0:
		return fail(kerr.InvalidRequest.Code)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		return fail(kerr.NotCoordinator.Code)
	}
	now := time.Now()
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID.Code)
		}
		g = newGroup(req.Group, now)
	}
	if !g.supports(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	c.groups[g.name] = g

	m := g.members[req.MemberID]
	switch {
	case req.MemberID == "" && instance != "":
		// A static member restarted: it takes the place of the member that
		// had its instance id.
		if old := g.members[g.instances[instance]]; old != nil {
			c.removeMember(g, old, kerr.FencedInstanceID.Code)
		}
	case req.MemberID == "" && req.Version >= 4:
		// KIP-394: hand out the id first, so that a client that times out
		// and retries does not leave an orphan member behind.
		id := newMemberID(clientID)
		c.addPending(g, id, session, now)
		resp.MemberID = id
		return fail(kerr.MemberIDRequired.Code)
	case m == nil && req.MemberID != "":
		if _, ok := g.pending[req.MemberID]; !ok {
			return fail(kerr.UnknownMemberID.Code)
		}
	case m != nil && m.instanceID != instance:
		return fail(kerr.FencedInstanceID.Code)
	}

	if m == nil {
		if c.cfg.MaxGroupSize > 0 && len(g.members) >= c.cfg.MaxGroupSize {
			delete(g.pending, req.MemberID)
			c.tryCompleteJoin(g, now)
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		id := req.MemberID
		if id == "" {
			id = newMemberID(clientID)
		}
		delete(g.pending, id)
		m = &member{id: id, instanceID: instance, isNew: true}
		g.members[id] = m
		if instance != "" {
			g.instances[instance] = id
		}
		if len(g.members) == 1 {
			g.protocolType = req.ProtocolType
		}
		if g.state == PreparingRebalance && !g.delayUntil.IsZero() {
			g.delayUntil = minTime(now.Add(c.cfg.InitialRebalanceDelay), g.delayLimit)
		}
	} else if (g.state == Stable && m.id != g.leader || g.state == CompletingRebalance) && sameProtocols(m.protocols, req.Protocols) {
		// Nothing changed: the member missed the answer; give it again.
		c.touch(g, m, now)
		r := g.joinResponse(m)
		return func() *kmsg.JoinGroupResponse { return r }
	}
	m.clientID, m.clientHost = clientID, clientHost
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	m.session, m.rebalance = session, rebalance
	c.seq++
	m.joinSeq = c.seq
	answerJoin(m, kerr.RebalanceInProgress.Code) // an earlier join of the same member
	wait := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinWait = wait
	c.touch(g, m, now)
	if g.state != PreparingRebalance {
		c.prepareRebalance(g, now)
	} else {
		c.tryCompleteJoin(g, now)
	}
	return func() *kmsg.JoinGroupResponse { return <-wait }
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// addPending remembers a member id handed out with MEMBER_ID_REQUIRED for
// one session timeout; the join phase waits for it meanwhile.
func (c *Coordinator) addPending(g *group, id string, session time.Duration, now time.Time) {
	g.pending[id] = now.Add(session)
	time.AfterFunc(session, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := g.pending[id]; !ok || c.closed {
			return
		}
		delete(g.pending, id)
		c.tryCompleteJoin(g, time.Now())
	})
}

// checkMember is the validation Heartbeat, SyncGroup and OffsetCommit share.
func (g *group) checkMember(memberID string, instanceID *string, generation int32) (*member, int16) {
	m := g.members[memberID]
	if m == nil && instanceID != nil && g.instances[*instanceID] != "" {
		return nil, kerr.FencedInstanceID.Code
	}
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if instanceID != nil && m.instanceID != *instanceID {
		return nil, kerr.FencedInstanceID.Code
	}
	if generation != g.generation {
		return m, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// Sync serves SyncGroup. The returned function blocks until the leader has
// sent the assignments (and, for the leader, until they are durable).
func (c *Coordinator) Sync(req *kmsg.SyncGroupRequest) func() *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	done := func() *kmsg.SyncGroupResponse { return resp }
	fail := func(code int16) func() *kmsg.SyncGroupResponse {
		resp.ErrorCode = code
		return done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		return fail(kerr.NotCoordinator.Code)
	}
	g := c.groups[req.Group]
	if g == nil || g.state == Empty {
		return fail(kerr.UnknownMemberID.Code)
	}
	m, code := g.checkMember(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		return fail(code)
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	now := time.Now()
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case Stable:
		c.touch(g, m, now)
		resp.MemberAssignment = m.assignment
		return done
	}
	// CompletingRebalance
	c.touch(g, m, now)
	m.synced = true
	answerSync(m, kerr.RebalanceInProgress.Code)
	wait := make(chan *kmsg.SyncGroupResponse, 1)
	m.syncWait = wait
	if m.id != g.leader {
		return func() *kmsg.SyncGroupResponse { return <-wait }
	}
	for _, o := range g.members {
		o.assignment = []byte{}
	}
	for _, a := range req.GroupAssignment {
		if o := g.members[a.MemberID]; o != nil && a.MemberAssignment != nil {
			o.assignment = a.MemberAssignment
		}
	}
	g.stopTimers()
	g.setState(Stable, now)
	gen := g.generation
	persisted := c.persistGroup(g, now)
	for _, o := range g.members {
		if o.syncWait != nil && o != m {
			r := kmsg.NewPtrSyncGroupResponse()
			r.ProtocolType, r.Protocol = &pt, &p
			r.MemberAssignment = o.assignment
			o.syncWait <- r
			o.syncWait = nil
		}
	}
	m.syncWait = nil
	resp.MemberAssignment = m.assignment
	return func() *kmsg.SyncGroupResponse {
		if err := persisted.wait(); err != nil {
			c.lg.Error("cannot store group metadata; the group rebalances", "group", g.name, "error", err)
			c.mu.Lock()
			if !c.closed && c.groups[g.name] == g && g.generation == gen && g.state == Stable {
				c.prepareRebalance(g, time.Now())
			}
			c.mu.Unlock()
			resp.ErrorCode, resp.MemberAssignment = kerr.CoordinatorNotAvailable.Code, nil
		}
		return resp
	}
}

// Heartbeat serves Heartbeat.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	g := c.groups[req.Group]
	if g == nil || g.state == Empty {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	m, code := g.checkMember(req.MemberID, req.InstanceID, req.Generation)
	if m != nil && code != kerr.FencedInstanceID.Code {
		c.touch(g, m, time.Now())
	}
	if code == 0 && g.state == PreparingRebalance {
		code = kerr.RebalanceInProgress.Code
	}
	resp.ErrorCode = code
	return resp
}

// Leave serves LeaveGroup: the members leave at once and the group
// rebalances without waiting for their sessions to expire.
func (c *Coordinator) Leave(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	leaving := req.Members
	if req.Version < 3 {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{m}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	g := c.groups[req.Group]
	now := time.Now()
	removed := false
	for _, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = l.MemberID, l.InstanceID
		rm.ErrorCode = c.leave(g, l, now, &removed)
		resp.Members = append(resp.Members, rm)
	}
	if removed {
		c.afterRemoval(g, now)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (c *Coordinator) leave(g *group, l kmsg.LeaveGroupRequestMember, now time.Time, removed *bool) int16 {
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	id := l.MemberID
	if id == "" && l.InstanceID != nil {
		id = g.instances[*l.InstanceID]
	}
	if _, ok := g.pending[id]; ok && id != "" {
		delete(g.pending, id)
		c.tryCompleteJoin(g, now)
		return 0
	}
	m := g.members[id]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case l.InstanceID != nil && m.instanceID != *l.InstanceID:
		return kerr.FencedInstanceID.Code
	}
	c.removeMember(g, m, kerr.UnknownMemberID.Code)
	*removed = true
	return 0
}
