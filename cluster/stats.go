package cluster

import (
	"maps"
	"slices"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// Stats is what a node shows of its cluster, for metrics.
type Stats struct {
	// Controller is the controller as far as this node knows (raft.None
	// if none), and IsController whether it is this node.
	Controller   int32
	IsController bool
	// Voter: this node is one of the voters (else a Raft learner).
	Voter bool
	// Term is Raft's current term on this node.
	Term uint64
	// Members counts the nodes gossip holds alive, this one included.
	Members int
	// Epoch is the controller's epoch (Raft's term when it was elected),
	// as the committed metadata says.
	Epoch int32
	// Voters are the voters; Observers the other nodes gossip holds alive
	// (brokers that are not voters), this one included if it is one.
	Voters, Observers []int32
	// Followers is, on the controller on the fast path, what each
	// follower has acknowledged.
	Followers map[int32]FollowerState
}

// FollowerState is what the controller knows of a follower's copy of the
// metadata log.
type FollowerState struct {
	// End is the log end it acknowledged; AckedAt when, and CaughtUpAt
	// when it last acknowledged the controller's log end.
	End                 int64
	AckedAt, CaughtUpAt time.Time
}

// Stats returns the node's view of its cluster now.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	s := Stats{Controller: n.leader, IsController: n.leader == n.cfg.ID && n.leading,
		Voter: slices.Contains(n.cfg.Voters, n.cfg.ID), Members: len(n.members) + 1, Voters: slices.Clone(n.cfg.Voters)}
	for id := range n.members {
		if !slices.Contains(n.cfg.Voters, id) {
			s.Observers = append(s.Observers, id)
		}
	}
	c := n.ctrl
	n.mu.Unlock()
	if !s.Voter {
		s.Observers = append(s.Observers, n.cfg.ID)
	}
	slices.Sort(s.Observers)
	if d := n.driver(); d != nil {
		s.Term = d.Status().Term
	}
	n.cfg.Meta.View(func(st *eventlog.State) { s.Epoch = int32(st.Controller.Term) })
	if c != nil {
		s.Followers = c.followers()
	}
	return s
}

// followers returns what each follower has acknowledged.
func (c *Controller) followers() map[int32]FollowerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.match)
}
