package cluster

import (
	"slices"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// A change that a node relays to the controller goes there and its answer
// comes back: two more hops than a change made on the controller. Were
// the answer to wait for the commit on the controller, the relaying node
// would also wait for the news of the commit, after the acknowledgements
// that make it. Instead the controller answers once its own copy is
// durable (AppendDurable), saying where the change ends, and the relaying
// node, which the batch reached meanwhile, answers its client once the
// change is committed and applied there (WaitCommit). Where the two nodes
// are a majority of the voters (three voters or fewer), the relaying
// node's own sync is what commits it.

// AppendDurable appends metadata events on the controller and returns once
// its own copy is durable, with the offset after them and their batch's
// epoch: they commit once a majority of the voters holds them, which the
// node that relayed the change waits for (WaitCommit). On the fallback
// path Raft answers on commit: end is 0, nothing to wait for.
func (n *Node) AppendDurable(timeout time.Duration, events ...eventlog.Event) (end int64, epoch int32, err error) {
	if n.cfg.Fallback {
		_, err := n.appendRaft(timeout, events...)
		return 0, 0, err
	}
	_, off, err := n.appendOwn(events...)
	if err != nil {
		return 0, 0, err
	}
	end = off + int64(len(events))
	return end, n.cfg.Meta.EpochBefore(end), nil
}

// WaitCommit waits, up to timeout, until the metadata batch of epoch that
// ends before offset end is committed and applied here, and reports
// whether it is; false also if another batch took its place (the
// controller that wrote it failed before a majority held it). It is
// committed once the controller says so or, where this node and that
// controller are a majority of the voters, once this node holds it
// durably: the controller answered (AppendDurable) once it did. A
// snapshot installed meanwhile over the batch still tells, where its last
// batch is of the same epoch (eventlog.Log.BatchCommitted).
func (n *Node) WaitCommit(end int64, epoch int32, timeout time.Duration) bool {
	log := n.cfg.Meta
	pair := slices.Contains(n.cfg.Voters, n.cfg.ID) && len(n.cfg.Voters) <= 3
	var expired <-chan time.Time
	for {
		durable, applied := log.Segment().Wait(), log.Moved()
		if log.Committed() >= end {
			return log.BatchCommitted(end, epoch)
		}
		if pair && log.HoldsDurable(end, epoch) {
			if err := log.Commit(end); err != nil {
				n.lg.Error("cannot apply committed metadata", "offset", end, "error", err)
				return false
			}
			continue
		}
		if expired == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-durable:
		case <-applied:
		case <-expired:
			return false
		case <-n.quit:
			return false
		}
	}
}
