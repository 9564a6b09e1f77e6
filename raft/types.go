package raft

import "fmt"

// None is no node: no vote, no known leader.
const None int32 = 0

// Role is what a node is in its term.
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

func (r Role) String() string {
	return [...]string{"follower", "pre-candidate", "candidate", "leader"}[r]
}

// MsgType is the kind of a Message.
type MsgType uint8

const (
	MsgPreVote MsgType = iota + 1
	MsgPreVoteResp
	MsgVote
	MsgVoteResp
	MsgApp
	MsgAppResp
	MsgHeartbeat
	MsgHeartbeatResp
	MsgSnap
	MsgTimeoutNow
)

func (t MsgType) String() string {
	switch t {
	case MsgPreVote:
		return "PreVote"
	case MsgPreVoteResp:
		return "PreVoteResp"
	case MsgVote:
		return "Vote"
	case MsgVoteResp:
		return "VoteResp"
	case MsgApp:
		return "App"
	case MsgAppResp:
		return "AppResp"
	case MsgHeartbeat:
		return "Heartbeat"
	case MsgHeartbeatResp:
		return "HeartbeatResp"
	case MsgSnap:
		return "Snap"
	case MsgTimeoutNow:
		return "TimeoutNow"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Entry is one log entry.
type Entry struct {
	Term, Index uint64
	Data        []byte
}

// Snapshot stands for the log up to Index (whose term is Term); Data is
// the application's state there.
type Snapshot struct {
	Index, Term uint64
	Data        []byte
}

// Message is what nodes send each other.
//
//   - PreVote, Vote: Term is the term campaigned for (a pre-vote's is the
//     next term, not yet taken); LogTerm and Index the candidate's last log
//     position; Force marks a campaign a leadership transfer asked for.
//   - PreVoteResp, VoteResp: Reject says whether the vote was refused.
//   - App: Index and LogTerm are the position before Entries; Commit the
//     leader's commit index.
//   - AppResp: Index is the follower's last matching index; on Reject,
//     RejectHint is the index the leader should retry from and HintTerm
//     the follower's term there (the fast conflict hint).
//   - Heartbeat: Commit is the leader's commit, capped at what the
//     follower is known to hold.
//   - Snap: Snapshot replaces the follower's log up to its index.
//   - TimeoutNow: the leader asks the target to campaign at once.
type Message struct {
	Type     MsgType
	From, To int32
	Term     uint64

	LogTerm, Index uint64
	Entries        []Entry
	Commit         uint64
	Reject         bool
	RejectHint     uint64
	HintTerm       uint64
	Snapshot       *Snapshot
	Force          bool
}

func (m Message) String() string {
	s := fmt.Sprintf("%d->%d %s term=%d", m.From, m.To, m.Type, m.Term)
	switch m.Type {
	case MsgPreVote, MsgVote:
		s += fmt.Sprintf(" last=%d/%d", m.LogTerm, m.Index)
		if m.Force {
			s += " force"
		}
	case MsgPreVoteResp, MsgVoteResp:
		if m.Reject {
			s += " rejected"
		} else {
			s += " granted"
		}
	case MsgApp:
		s += fmt.Sprintf(" prev=%d/%d entries=%d commit=%d", m.LogTerm, m.Index, len(m.Entries), m.Commit)
	case MsgAppResp:
		if m.Reject {
			s += fmt.Sprintf(" rejected index=%d hint=%d/%d", m.Index, m.HintTerm, m.RejectHint)
		} else {
			s += fmt.Sprintf(" index=%d", m.Index)
		}
	case MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d", m.Commit)
	case MsgSnap:
		s += fmt.Sprintf(" snapshot=%d/%d", m.Snapshot.Term, m.Snapshot.Index)
	}
	return s
}

// HardState is what must be durable before any message that depends on
// it leaves: the term, the vote in it, and the commit index.
type HardState struct {
	Term   uint64
	Vote   int32
	Commit uint64
}

// Ready is what a node asks of its driver, in this order: persist
// HardState (if not nil), Snapshot (if not nil) and Entries (replacing any
// stored entries from the first one's index on), with a sync; then send
// Messages; then apply CommittedEntries; then call Advance.
type Ready struct {
	HardState        *HardState
	Snapshot         *Snapshot
	Entries          []Entry
	Messages         []Message
	CommittedEntries []Entry
	// Role and Leader, set when they changed since the last Ready.
	RoleChanged bool
	Role        Role
	Leader      int32
}

// Empty reports whether there is nothing to do.
func (rd *Ready) Empty() bool {
	return rd.HardState == nil && rd.Snapshot == nil && len(rd.Entries) == 0 && len(rd.Messages) == 0 &&
		len(rd.CommittedEntries) == 0 && !rd.RoleChanged
}
