package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Config configures a node. A node not among the voters is a learner: it
// takes the leader's log, but neither votes, campaigns nor counts toward
// a commit; a leader replicates to the learners AddLearner names.
type Config struct {
	ID     int32
	Voters []int32
	// ElectionTicks is the election timeout; each follower waits a random
	// number of ticks in [ElectionTicks, 2*ElectionTicks) before it
	// campaigns. A leader that has not heard from a majority within
	// ElectionTicks steps down (check-quorum). Default 10.
	ElectionTicks int
	// HeartbeatTicks is how often a leader sends heartbeats. Default 1.
	HeartbeatTicks int
	// MaxInflight bounds the append messages in flight to one follower.
	// Default 64.
	MaxInflight int
	// MaxEntriesPerMsg bounds the entries of one append message. Default 64.
	MaxEntriesPerMsg int
	// MaxBytesPerMsg bounds the entries' data in one append message, which
	// holds at least one entry however large. Default 4 MiB.
	MaxBytesPerMsg int
	// Log, when set, is the log elections compare instead of Raft's own:
	// the metadata log's (last epoch, last offset) on the fast path.
	Log LogView
	// MayCampaign, when set, is asked when the election timeout passes: a
	// voter campaigns only if it says yes (a node with an empty log
	// deferring to one whose log is a cluster's). Nil: always.
	MayCampaign func() bool
	// MayVote, when set, is asked before this voter grants a vote or a
	// pre-vote to candidate: a no refuses it (a voter with a new, empty
	// disk that has not yet taken what the cluster committed). Nil:
	// always.
	MayVote func(candidate int32) bool
	// Seed seeds the randomized election timeouts.
	Seed uint64
}

// LogView is the last position of a log, as votes compare it.
type LogView interface {
	Last() (term, index uint64)
}

// Fencer is a LogView whose log is written outside Raft (the metadata log
// the fast path's controller ships): Raft calls Fence with this node's
// new term whenever it rises, before it compares logs for a vote or
// campaigns in that term, and at start with the restored term. From then
// on the log must take nothing from a leader of an older term, as Raft
// refuses such a leader's appends: a batch taken after a vote that did
// not count it could be committed by the deposed leader and missing from
// the new one.
type Fencer interface {
	LogView
	Fence(term uint64)
}

// Restored is a node's durable state, as its driver persisted it.
type Restored struct {
	HardState HardState
	Snapshot  *Snapshot
	Entries   []Entry // after the snapshot
}

// Empty reports whether nothing was restored: storage that never held a
// term, a vote, an entry or a snapshot.
func (r Restored) Empty() bool {
	return r.HardState == (HardState{}) && r.Snapshot == nil && len(r.Entries) == 0
}

// Errors of Propose and TransferLeadership.
var (
	ErrNotLeader    = errors.New("raft: not the leader")
	ErrTransferring = errors.New("raft: leadership transfer in progress")
)

// Node is the pure Raft core: messages and ticks in, Ready out. It has no
// goroutines, clocks, sockets or disks, and is not safe for concurrent use.
type Node struct {
	cfg    Config
	id     int32
	voters []int32
	// peers are the voters other than this node, then the learners
	// AddLearner named, in order: whom a leader replicates to.
	peers []int32
	rng   *rand.Rand

	term uint64
	vote int32
	role Role
	lead int32
	log  raftLog
	// heard is the highest commit index the leader of term sent, not
	// bounded by this node's log.
	heard struct{ term, commit uint64 }

	electionElapsed    int
	heartbeatElapsed   int
	randomizedElection int

	votes map[int32]bool
	prs   map[int32]*progress

	transferee      int32
	transferElapsed int

	msgs     []Message
	prevHS   HardState
	prevRole Role
	prevLead int32
}

// progress is the leader's view of a follower.
type progress struct {
	match, next uint64
	probing     bool     // one append in flight until answered
	inflight    []uint64 // last index of each append in flight
	active      bool     // heard from since the last quorum check
	pendingSnap uint64   // index of a snapshot sent, until acknowledged
	snapElapsed int      // ticks since; after an election timeout it is sent again
}

// New returns a node restored from its durable state (zero for a new one).
func New(cfg Config, st Restored) (*Node, error) {
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.HeartbeatTicks >= cfg.ElectionTicks {
		return nil, fmt.Errorf("raft: heartbeat ticks %d must be below election ticks %d", cfg.HeartbeatTicks, cfg.ElectionTicks)
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 64
	}
	if cfg.MaxEntriesPerMsg <= 0 {
		cfg.MaxEntriesPerMsg = 64
	}
	if cfg.MaxBytesPerMsg <= 0 {
		cfg.MaxBytesPerMsg = 4 << 20
	}
	if cfg.ID == None || len(cfg.Voters) == 0 || slices.Contains(cfg.Voters, None) {
		return nil, fmt.Errorf("raft: node %d with voters %v: node ids are positive, and there are voters", cfg.ID, cfg.Voters)
	}
	n := &Node{cfg: cfg, id: cfg.ID, voters: slices.Clone(cfg.Voters), rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID)))}
	for _, id := range n.voters {
		if id != n.id {
			n.peers = append(n.peers, id)
		}
	}
	if st.Snapshot != nil {
		n.log.snap = *st.Snapshot
	}
	for i, e := range st.Entries {
		if e.Index != n.log.snap.Index+1+uint64(i) {
			return nil, fmt.Errorf("raft: restored entry %d has index %d, want %d", i, e.Index, n.log.snap.Index+1+uint64(i))
		}
	}
	n.log.entries = slices.Clone(st.Entries)
	n.log.stable = n.log.lastIndex()
	n.log.applied = n.log.snap.Index
	n.log.committed = max(min(st.HardState.Commit, n.log.lastIndex()), n.log.snap.Index)
	n.term, n.vote = st.HardState.Term, st.HardState.Vote
	n.fence()
	n.prevHS = n.hardState()
	n.becomeFollower(n.term, None)
	n.prevRole, n.prevLead = n.role, n.lead
	return n, nil
}

func (n *Node) hardState() HardState {
	return HardState{Term: n.term, Vote: n.vote, Commit: n.log.committed}
}

// Status is a node's state, for tests and logs.
type Status struct {
	ID                      int32
	Role                    Role
	Term                    uint64
	Lead                    int32
	Commit, Applied, Last   uint64
	SnapshotIndex, LastTerm uint64
	// LeaderCommit is the commit index the leader of Term has sent (this
	// node's own on the leader), which Commit reaches once this node's log
	// does; 0 before the leader has sent one.
	LeaderCommit uint64
}

// Status returns the node's state.
func (n *Node) Status() Status {
	st := Status{ID: n.id, Role: n.role, Term: n.term, Lead: n.lead, Commit: n.log.committed, Applied: n.log.applied,
		Last: n.log.lastIndex(), SnapshotIndex: n.log.snap.Index, LastTerm: n.log.lastTerm()}
	switch {
	case n.role == Leader:
		st.LeaderCommit = n.log.committed
	case n.heard.term == n.term:
		st.LeaderCommit = n.heard.commit
	}
	return st
}

// hear notes a commit index the leader sent.
func (n *Node) hear(commit uint64) {
	if n.heard.term != n.term {
		n.heard.term, n.heard.commit = n.term, 0
	}
	n.heard.commit = max(n.heard.commit, commit)
}

func (n *Node) quorum() int { return len(n.voters)/2 + 1 }

func (n *Node) isVoter(id int32) bool { return slices.Contains(n.voters, id) }

// AddLearner has a leader, now and later, replicate its log to node id,
// which is not a voter. Adding a voter or a learner again does nothing.
func (n *Node) AddLearner(id int32) {
	if id == None || id == n.id || slices.Contains(n.peers, id) {
		return
	}
	n.peers = append(n.peers, id)
	if n.role == Leader {
		n.prs[id] = &progress{next: n.log.lastIndex() + 1, probing: true, active: true}
		n.sendAppend(id)
	}
}

func (n *Node) send(m Message) {
	m.From = n.id
	if m.Term == 0 {
		m.Term = n.term
	}
	n.msgs = append(n.msgs, m)
}

func (n *Node) resetTimers() {
	n.electionElapsed, n.heartbeatElapsed = 0, 0
	n.randomizedElection = n.cfg.ElectionTicks + n.rng.IntN(n.cfg.ElectionTicks)
	n.transferee, n.transferElapsed = None, 0
}

// fence tells a Fencer log the node's term.
func (n *Node) fence() {
	if f, ok := n.cfg.Log.(Fencer); ok {
		f.Fence(n.term)
	}
}

func (n *Node) becomeFollower(term uint64, lead int32) {
	if term > n.term {
		n.term, n.vote = term, None
		n.fence()
	}
	n.role, n.lead = Follower, lead
	n.prs = nil
	n.resetTimers()
}

// Tick advances the node's clock by one tick.
func (n *Node) Tick() {
	if n.role == Leader {
		n.tickLeader()
		return
	}
	n.electionElapsed++
	if n.electionElapsed >= n.randomizedElection {
		n.electionElapsed = 0
		// A learner never campaigns.
		if n.isVoter(n.id) && (n.cfg.MayCampaign == nil || n.cfg.MayCampaign()) {
			n.campaign(true, false)
		}
	}
}

func (n *Node) tickLeader() {
	n.heartbeatElapsed++
	n.electionElapsed++
	if n.transferee != None {
		n.transferElapsed++
		if n.transferElapsed >= n.cfg.ElectionTicks {
			n.transferee, n.transferElapsed = None, 0 // the target did not take over: carry on
		}
	}
	if n.electionElapsed >= n.cfg.ElectionTicks {
		n.electionElapsed = 0
		// Check-quorum: a leader that has not heard from a majority in an
		// election timeout steps down rather than serve stale.
		active := 1
		for id, pr := range n.prs {
			if id != n.id && pr.active && n.isVoter(id) {
				active++
			}
			pr.active = false
		}
		if active < n.quorum() {
			n.becomeFollower(n.term, None)
			return
		}
	}
	for _, pr := range n.prs {
		if pr.pendingSnap > 0 {
			if pr.snapElapsed++; pr.snapElapsed >= n.cfg.ElectionTicks {
				pr.pendingSnap, pr.snapElapsed = 0, 0 // lost: send it again
			}
		}
	}
	if n.heartbeatElapsed >= n.cfg.HeartbeatTicks {
		n.heartbeatElapsed = 0
		for _, id := range n.peers {
			pr := n.prs[id]
			n.send(Message{Type: MsgHeartbeat, To: id, Commit: min(pr.match, n.log.committed)})
		}
	}
}

// logLast is the log position elections compare.
func (n *Node) logLast() (uint64, uint64) {
	if n.cfg.Log != nil {
		return n.cfg.Log.Last()
	}
	return n.log.lastTerm(), n.log.lastIndex()
}

// campaign starts a pre-vote (pre) or an election. force marks a campaign
// a leadership transfer asked for: voters ignore their leader lease.
func (n *Node) campaign(pre, force bool) {
	n.votes = map[int32]bool{n.id: true}
	term := n.term + 1
	typ := MsgVote
	if pre {
		n.role, n.lead = PreCandidate, None
		typ = MsgPreVote
	} else {
		n.term, n.vote, n.role, n.lead = term, n.id, Candidate, None
		n.fence()
	}
	n.resetTimers()
	if n.quorum() == 1 {
		n.winVote(pre)
		return
	}
	lt, li := n.logLast()
	for _, id := range n.voters {
		if id != n.id {
			n.send(Message{Type: typ, To: id, Term: term, LogTerm: lt, Index: li, Force: force})
		}
	}
}

func (n *Node) winVote(pre bool) {
	if pre {
		n.campaign(false, false)
	} else {
		n.becomeLeader()
	}
}

func (n *Node) becomeLeader() {
	n.role, n.lead = Leader, n.id
	n.resetTimers()
	n.prs = map[int32]*progress{}
	for _, id := range append([]int32{n.id}, n.peers...) {
		n.prs[id] = &progress{next: n.log.lastIndex() + 1, probing: true, active: true}
	}
	n.prs[n.id].match = n.log.stable
	// An entry of its own term lets the leader commit what earlier terms
	// left (the Figure 8 rule commits only entries of the current term).
	n.appendEntries([]Entry{{}})
	n.broadcastAppend()
}

// Step feeds the node a message from a peer.
func (n *Node) Step(m Message) {
	if (m.Type == MsgPreVote || m.Type == MsgVote) && !n.isVoter(m.From) {
		// A campaign by a node this one does not hold a voter (a node
		// given other voters): refused without taking its term, which
		// would depose a live leader.
		n.send(Message{Type: voteResp(m.Type), To: m.From, Reject: true})
		return
	}
	switch {
	case m.Term > n.term:
		if (m.Type == MsgPreVote || m.Type == MsgVote) && !m.Force && n.lead != None && n.electionElapsed < n.cfg.ElectionTicks-n.cfg.HeartbeatTicks {
			// Leader stickiness: a node that hears from a live leader
			// ignores campaigns; a partitioned node rejoining cannot
			// disrupt. The lease is a heartbeat shorter than the shortest
			// election timeout: when the leader dies, the first follower to
			// time out may have heard its last heartbeat that much earlier
			// than the others, and must not be ignored by them.
			return
		}
		switch {
		case m.Type == MsgPreVote:
		case m.Type == MsgPreVoteResp && !m.Reject:
			// A granted pre-vote carries the term campaigned for.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			n.becomeFollower(m.Term, m.From)
		default:
			n.becomeFollower(m.Term, None)
		}
	case m.Term < n.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat:
			// A stale leader: tell it the term so it steps down.
			n.send(Message{Type: MsgAppResp, To: m.From})
		case MsgPreVote:
			n.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true})
		}
		return
	}

	switch m.Type {
	case MsgPreVote, MsgVote:
		n.handleVote(m)
		return
	}
	switch n.role {
	case Follower:
		n.stepFollower(m)
	case PreCandidate, Candidate:
		n.stepCandidate(m)
	case Leader:
		n.stepLeader(m)
	}
}

func (n *Node) handleVote(m Message) {
	resp := voteResp(m.Type)
	if !n.isVoter(n.id) {
		n.send(Message{Type: resp, To: m.From, Reject: true}) // a learner has no vote
		return
	}
	if n.cfg.MayVote != nil && !n.cfg.MayVote(m.From) {
		n.send(Message{Type: resp, To: m.From, Reject: true})
		return
	}
	canVote := n.vote == m.From || n.vote == None && n.lead == None || m.Type == MsgPreVote && m.Term > n.term
	lt, li := n.logLast()
	if m.Type == MsgPreVote && n.role == PreCandidate && m.LogTerm == lt && m.Index == li && m.From > n.id {
		// Two pre-candidates with the same log would both pass and split
		// the vote: the lower id goes first. (Pre-votes change no state,
		// so this costs no safety; the other still wins if this one dies.)
		canVote = false
	}
	if canVote && upToDate(lt, li, m.LogTerm, m.Index) {
		n.send(Message{Type: resp, To: m.From, Term: m.Term})
		if m.Type == MsgVote {
			n.electionElapsed = 0
			n.vote = m.From
		}
		return
	}
	n.send(Message{Type: resp, To: m.From, Reject: true})
}

// voteResp is the answer's type to a vote or pre-vote.
func voteResp(t MsgType) MsgType {
	if t == MsgPreVote {
		return MsgPreVoteResp
	}
	return MsgVoteResp
}

func (n *Node) stepFollower(m Message) {
	switch m.Type {
	case MsgApp:
		n.electionElapsed, n.lead = 0, m.From
		n.hear(m.Commit)
		n.handleAppend(m)
	case MsgHeartbeat:
		n.electionElapsed, n.lead = 0, m.From
		n.hear(m.Commit)
		n.log.committed = max(n.log.committed, min(m.Commit, n.log.lastIndex()))
		// With its log's end: a follower that lost its log (a disk
		// replaced) holds less than it once acknowledged.
		n.send(Message{Type: MsgHeartbeatResp, To: m.From, Index: n.log.lastIndex()})
	case MsgSnap:
		n.electionElapsed, n.lead = 0, m.From
		n.hear(max(m.Commit, m.Snapshot.Index)) // the commit may lie beyond the snapshot
		n.handleSnapshot(m)
	case MsgTimeoutNow:
		if n.isVoter(n.id) {
			n.campaign(false, true)
		}
	}
}

func (n *Node) stepCandidate(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		n.becomeFollower(m.Term, m.From)
		n.stepFollower(m)
	case MsgPreVoteResp, MsgVoteResp:
		if (m.Type == MsgPreVoteResp) != (n.role == PreCandidate) || !n.isVoter(m.From) {
			return
		}
		n.votes[m.From] = !m.Reject
		granted, rejected := 0, 0
		for _, v := range n.votes {
			if v {
				granted++
			} else {
				rejected++
			}
		}
		switch {
		case granted >= n.quorum():
			n.winVote(n.role == PreCandidate)
		case rejected >= n.quorum():
			n.becomeFollower(n.term, None)
		}
	}
}

// handleAppend appends what continues the log and answers with the last
// matching index, or rejects with a hint: the follower's term at the
// leader's previous index and the first index of that term, or its log end.
func (n *Node) handleAppend(m Message) {
	if m.Index < n.log.committed {
		n.send(Message{Type: MsgAppResp, To: m.From, Index: n.log.committed})
		return
	}
	if n.log.matchTerm(m.Index, m.LogTerm) {
		n.log.appendAfter(m.Index, m.Entries)
		last := m.Index + uint64(len(m.Entries))
		n.log.committed = max(n.log.committed, min(m.Commit, last))
		n.send(Message{Type: MsgAppResp, To: m.From, Index: last})
		return
	}
	resp := Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true}
	if m.Index > n.log.lastIndex() {
		resp.RejectHint = n.log.lastIndex() + 1
	} else {
		t, _ := n.log.term(m.Index)
		resp.HintTerm, resp.RejectHint = t, n.log.firstIndexOfTerm(m.Index, t)
	}
	n.send(resp)
}

func (n *Node) handleSnapshot(m Message) {
	s := *m.Snapshot
	switch {
	case s.Index <= n.log.committed:
	case n.log.matchTerm(s.Index, s.Term):
		n.log.committed = s.Index
	default:
		n.log.restore(s)
	}
	n.send(Message{Type: MsgAppResp, To: m.From, Index: n.log.committed})
}

// Propose appends data to the log, on the leader.
func (n *Node) Propose(data []byte) error {
	if n.role != Leader {
		return ErrNotLeader
	}
	if n.transferee != None {
		return ErrTransferring
	}
	n.appendEntries([]Entry{{Data: data}})
	n.broadcastAppend()
	return nil
}

func (n *Node) appendEntries(ents []Entry) {
	last := n.log.lastIndex()
	for i := range ents {
		ents[i].Term, ents[i].Index = n.term, last+1+uint64(i)
	}
	n.log.entries = append(n.log.entries, ents...)
}

// TransferLeadership asks the leader to hand over to another voter: it
// stops taking proposals, brings the target up to date and tells it to
// campaign at once. It gives up after an election timeout.
func (n *Node) TransferLeadership(to int32) error {
	if n.role != Leader {
		return ErrNotLeader
	}
	if to == n.id || !slices.Contains(n.voters, to) {
		return fmt.Errorf("raft: cannot transfer leadership to %d", to)
	}
	n.transferee, n.transferElapsed = to, 0
	if n.prs[to].match == n.log.lastIndex() {
		n.send(Message{Type: MsgTimeoutNow, To: to})
	} else {
		n.sendAppend(to)
	}
	return nil
}

// Compact drops the log up to index, which the application has applied
// and captured in data; a follower that needs those entries gets the
// snapshot instead.
func (n *Node) Compact(index uint64, data []byte) error {
	if !n.log.compact(index, data) {
		return fmt.Errorf("raft: cannot compact to %d (snapshot at %d, applied %d)", index, n.log.snap.Index, n.log.applied)
	}
	return nil
}
