package cluster

import (
	"maps"
	"slices"
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
	// Acknowledged is, on the controller on the fast path, the metadata
	// log end each follower has acknowledged.
	Acknowledged map[int32]int64
}

// Stats returns the node's view of its cluster now.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	s := Stats{Controller: n.leader, IsController: n.leader == n.cfg.ID && n.leading,
		Voter: slices.Contains(n.cfg.Voters, n.cfg.ID), Members: len(n.members) + 1}
	c := n.ctrl
	n.mu.Unlock()
	if d := n.driver(); d != nil {
		s.Term = d.Status().Term
	}
	if c != nil {
		s.Acknowledged = c.acknowledged()
	}
	return s
}

// acknowledged returns each follower's acknowledged log end.
func (c *Controller) acknowledged() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.match)
}
