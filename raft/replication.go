package raft

import "slices"

func (n *Node) broadcastAppend() {
	for _, id := range n.peers {
		n.sendAppend(id)
	}
}

// sendAppend sends a follower what it lacks, within its window: one
// message while probing for the point where the logs match, up to
// MaxInflight once they do; the snapshot when the entries it needs are
// compacted away.
func (n *Node) sendAppend(to int32) {
	pr := n.prs[to]
	if pr.pendingSnap > 0 || pr.probing && len(pr.inflight) > 0 || len(pr.inflight) >= n.cfg.MaxInflight {
		return
	}
	prev := pr.next - 1
	prevTerm, ok := n.log.term(prev)
	if !ok {
		snap := n.log.snap
		pr.pendingSnap, pr.snapElapsed, pr.probing, pr.inflight = snap.Index, 0, true, nil
		n.send(Message{Type: MsgSnap, To: to, Snapshot: &snap, Commit: n.log.committed})
		return
	}
	last := n.log.lastIndex()
	// An up-to-date follower gets an empty append: it carries the commit
	// index now rather than at the next heartbeat.
	ents := n.log.slice(pr.next, min(last+1, pr.next+uint64(n.cfg.MaxEntriesPerMsg)))
	for i, size := 0, 0; i < len(ents); i++ {
		if size += len(ents[i].Data); size > n.cfg.MaxBytesPerMsg && i > 0 {
			ents = ents[:i]
			break
		}
	}
	n.send(Message{Type: MsgApp, To: to, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: n.log.committed})
	sent := prev + uint64(len(ents))
	pr.inflight = append(pr.inflight, sent)
	if !pr.probing {
		pr.next = sent + 1
	}
}

func (n *Node) stepLeader(m Message) {
	pr := n.prs[m.From]
	if pr == nil {
		return
	}
	pr.active = true
	switch m.Type {
	case MsgHeartbeatResp:
		if m.Index < pr.match {
			// The follower holds less than it acknowledged: it lost its
			// log. It counts for what it holds, and is sent the rest
			// again (probing from its end); the commit index stays.
			pr.match, pr.next, pr.probing, pr.inflight, pr.pendingSnap = m.Index, m.Index+1, true, nil, 0
		}
		// A lost append must not stall the follower: free a slot.
		if pr.probing {
			pr.inflight = nil
		} else if len(pr.inflight) >= n.cfg.MaxInflight {
			pr.inflight = pr.inflight[1:]
		}
		if pr.match < n.log.lastIndex() {
			n.sendAppend(m.From)
		}
	case MsgAppResp:
		if m.Reject {
			n.handleReject(pr, m)
		} else {
			n.handleAck(pr, m)
		}
	}
}

func (n *Node) handleReject(pr *progress, m Message) {
	// Stale rejections (of an append already superseded) are ignored.
	if m.Index <= pr.match || pr.probing && m.Index != pr.next-1 {
		return
	}
	next := m.RejectHint
	if m.HintTerm > 0 {
		if i := n.log.lastIndexOfTerm(m.HintTerm); i > 0 {
			next = i + 1
		}
	}
	pr.next = max(min(next, m.Index), pr.match+1)
	pr.probing, pr.inflight = true, nil
	n.sendAppend(m.From)
}

func (n *Node) handleAck(pr *progress, m Message) {
	if m.Index > pr.match {
		pr.match = m.Index
	}
	pr.next = max(pr.next, pr.match+1)
	pr.inflight = slices.DeleteFunc(pr.inflight, func(i uint64) bool { return i <= m.Index })
	if pr.pendingSnap > 0 && pr.match >= pr.pendingSnap {
		pr.pendingSnap = 0
	}
	if pr.probing {
		pr.probing, pr.inflight = false, nil
	}
	if n.maybeCommit() {
		n.broadcastAppend()
	}
	if m.From == n.transferee && pr.match == n.log.lastIndex() {
		n.send(Message{Type: MsgTimeoutNow, To: m.From})
	}
	for pr.next <= n.log.lastIndex() && len(pr.inflight) < n.cfg.MaxInflight && pr.pendingSnap == 0 {
		before := len(pr.inflight)
		n.sendAppend(m.From)
		if len(pr.inflight) == before {
			break
		}
	}
}

// maybeCommit advances the commit index to the highest index a majority
// holds durably, if that entry is of the current term (Raft's Figure 8
// rule: an earlier term's entry is committed only through one of the
// current term).
func (n *Node) maybeCommit() bool {
	matches := make([]uint64, 0, len(n.voters))
	for _, id := range n.voters {
		matches = append(matches, n.prs[id].match)
	}
	slices.Sort(matches)
	idx := matches[len(matches)-n.quorum()]
	if idx <= n.log.committed {
		return false
	}
	if t, _ := n.log.term(idx); t != n.term {
		return false
	}
	n.log.committed = idx
	return true
}

// Ready returns what the driver must do next (see Ready); call Advance
// once it is done, before the next Ready.
func (n *Node) Ready() Ready {
	var rd Ready
	if hs := n.hardState(); hs != n.prevHS {
		rd.HardState = &hs
	}
	if n.log.snapUnstable {
		s := n.log.snap
		rd.Snapshot = &s
	}
	rd.Entries = slices.Clone(n.log.unstable())
	rd.Messages, n.msgs = n.msgs, nil
	if hi := min(n.log.committed, n.log.stable); hi > n.log.applied {
		rd.CommittedEntries = slices.Clone(n.log.slice(n.log.applied+1, hi+1))
	}
	if n.role != n.prevRole || n.lead != n.prevLead {
		rd.RoleChanged, rd.Role, rd.Leader = true, n.role, n.lead
	}
	return rd
}

// Advance tells the node that rd is done: its state and entries are
// durable, its messages sent, its committed entries applied.
func (n *Node) Advance(rd Ready) {
	if rd.HardState != nil {
		n.prevHS = *rd.HardState
	}
	if rd.Snapshot != nil && rd.Snapshot.Index == n.log.snap.Index {
		n.log.snapUnstable = false
	}
	if k := len(rd.Entries); k > 0 {
		last := rd.Entries[k-1]
		// Entries replaced since Ready are not durable yet.
		if n.log.matchTerm(last.Index, last.Term) {
			n.log.stable = max(n.log.stable, last.Index)
		}
	}
	if k := len(rd.CommittedEntries); k > 0 {
		n.log.applied = max(n.log.applied, rd.CommittedEntries[k-1].Index)
	}
	if rd.RoleChanged {
		n.prevRole, n.prevLead = rd.Role, rd.Leader
	}
	if n.role == Leader && n.prs[n.id].match < n.log.stable {
		n.prs[n.id].match = n.log.stable
		if n.maybeCommit() {
			n.broadcastAppend()
		}
	}
}
