package cluster

import (
	"cmp"
	"context"
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
	// Followers is, on the controller, what each follower has
	// acknowledged (on the fallback path, the metadata offset after the
	// last Raft entry it acknowledged, -1 if this node no longer knows
	// it).
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
	} else if n.cfg.Fallback && s.IsController {
		s.Followers = n.fallbackFollowers()
	}
	return s
}

// fallbackFollowers returns, on the controller on the fallback path, what
// Raft's leader knows of each follower, in metadata offsets.
func (n *Node) fallbackFollowers() map[int32]FollowerState {
	d := n.driver()
	if d == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	prs, last, err := d.Progress(ctx)
	if err != nil || prs == nil {
		return nil
	}
	snap := d.Status().SnapshotIndex
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[int32]FollowerState, len(prs))
	for id, pr := range prs {
		f := FollowerState{End: -1, AckedAt: pr.AnsweredAt}
		// The entries applied since the last compaction, in order, each
		// with the metadata offset after it.
		i, _ := slices.BinarySearchFunc(n.applied, pr.Match, func(a indexOffset, m uint64) int { return cmp.Compare(a.index, m) })
		switch {
		case i < len(n.applied) && n.applied[i].index == pr.Match:
			f.End = n.applied[i].offset
		case i > 0:
			f.End = n.applied[i-1].offset // entries after it are not applied here yet
		case pr.Match >= snap && (len(n.applied) == 0 || pr.Match < n.applied[0].index):
			f.End = n.compactedAt
		}
		if pr.Match == last {
			f.CaughtUpAt = pr.AnsweredAt
		}
		out[id] = f
	}
	return out
}

// followers returns what each follower has acknowledged.
func (c *Controller) followers() map[int32]FollowerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.match)
}
