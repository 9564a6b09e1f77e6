package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/gossip"
	"github.com/chronik-stream/chronik/raft"
	"github.com/chronik-stream/chronik/segment"
)

// A voter whose disk is new (its data directory empty: a disk replaced, a
// directory wiped) holds nothing of what its last run acknowledged, and
// the cluster may have counted that run for a commit: were it to vote at
// once, it could elect a node that lacks a committed change while the
// only other copy is on a node that is down (KRaft's static quorums have
// this hole; its KIP-853 closes it with directory ids). A node that starts
// with empty Raft state and an empty metadata log is pristine; if gossip
// then shows it a node of a formed cluster (Meta.Formed) before its own
// metadata holds one, it joins a cluster that formed without it, maybe in
// place of its last run: it is catching up. Until it has taken what the
// current controller committed (the controller's own first batch of its
// term, and every commit point the controller sent it), it neither votes
// nor campaigns. The nodes of a cluster that forms are pristine and see no
// formed node: they vote for a known candidate of no formed cluster (a
// cluster forming, or a single node's data becoming its first node), and
// are pristine no more once they have voted so, or been elected and
// committed their term's first batch. One that did neither (the others
// formed the cluster without its vote) catches up, briefly: nothing of it
// tells a node that took part from one whose disk is new.
//
// Catching up is kept in catchUpFile, written when it starts and removed
// when it ends: a node that stops while catching up is catching up when it
// starts again.
const catchUpFile = "catching-up"

// openCatchUp reports whether a node starts catching up (its file is
// there), or pristine (it holds nothing).
func openCatchUp(fsys segment.FS, raftDir string, restored raft.Restored, meta *eventlog.Log) (catchingUp, pristine bool, err error) {
	path := filepath.Join(raftDir, catchUpFile)
	switch f, err := fsys.OpenFile(path, os.O_RDONLY, 0); {
	case err == nil:
		f.Close()
		return true, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, false, fmt.Errorf("cluster: %w", err)
	}
	end, _ := meta.End()
	return false, end == 0 && restored.Empty(), nil
}

// seeFormed is told of a member of a formed cluster: a pristine node
// starts catching up.
func (n *Node) seeFormed(m gossip.Meta) {
	if !m.Formed || !n.pristine.CompareAndSwap(true, false) {
		return
	}
	n.catchingUp.Store(true)
	path := filepath.Join(n.cfg.RaftDir, catchUpFile)
	if err := segment.ReplaceFile(n.cfg.FS, path, path+".tmp", []byte("this node started with an empty data directory in a cluster that had formed: it votes once it holds what the cluster committed\n")); err != nil {
		n.lg.Error("cannot write "+path+": a restart before this node has caught up forgets that it is catching up", "error", err)
	} else {
		n.marked.Store(true)
	}
	n.lg.Info("this node started with an empty data directory in a cluster that formed (its disk may be new): it votes once it holds what the cluster committed",
		"node_id", n.cfg.ID, "formed_node", m.NodeID)
}

// mayVote is Raft's MayVote: a node catching up votes for nobody; a
// pristine node votes for a known candidate of no formed cluster, and is
// pristine no more.
func (n *Node) mayVote(candidate int32) bool {
	switch {
	case n.catchingUp.Load():
		return false
	case !n.pristine.Load():
		return true
	}
	n.mu.Lock()
	m, ok := n.members[candidate]
	n.mu.Unlock()
	if !ok || m.Formed {
		return false
	}
	n.pristine.Store(false)
	return true
}

// holdsFormed reports whether the metadata log holds a formed cluster: a
// controller that several voters elected (committed or not: at start a
// follower on the fast path knows no commit point yet, and a controller
// appends its term's first batch only once elected).
func holdsFormed(meta *eventlog.Log) (formed bool) {
	meta.ViewAll(func(s *eventlog.State) { formed = len(s.Controller.Voters) > 1 && s.Controller.Leader > 0 })
	return formed
}

// caughtUp reports whether this node holds what the cluster committed
// before it started: the current controller's first batch of its term is
// applied here, and so is the first commit point heard (target keeps it
// between calls). Not the last one heard: while changes stream, a
// controller's commit point runs ahead of what it has shipped here yet
// (the other follower acknowledged first), and a node that had applied
// everything could go on catching up for many seconds, with its vote held
// back meanwhile.
func (n *Node) caughtUp(target *int64) bool {
	d := n.driver()
	if d == nil {
		return false
	}
	st := d.Status()
	if st.Lead == raft.None {
		return false
	}
	var c eventlog.Controller
	n.cfg.Meta.View(func(s *eventlog.State) { c = s.Controller })
	var heard, applied int64
	switch {
	case c.Term != int64(st.Term) || c.Leader != st.Lead:
		return false
	case n.cfg.Fallback:
		heard, applied = int64(st.LeaderCommit), int64(st.Applied)
	case st.Role == raft.Leader:
		return true
	default:
		// A commit point heard, not only a snapshot installed: the
		// changes committed after the snapshot's offset are then here too.
		heard, applied = n.follower.heard.Load(), n.cfg.Meta.Committed()
	}
	if *target == 0 {
		*target = heard
	}
	return *target > 0 && applied >= *target
}

// catchUp tells gossip once this node's metadata holds a formed cluster
// (told: its gossip said so from the start), and ends its catching up once
// it is caught up.
func (n *Node) catchUp(told bool) {
	path := filepath.Join(n.cfg.RaftDir, catchUpFile)
	var target int64
	for {
		if !told && holdsFormed(n.cfg.Meta) {
			if err := n.gsp.SetFormed(time.Second); err != nil {
				n.lg.Warn("gossip: cannot tell the others this node's cluster formed yet (they learn it with its next state exchange)", "error", err)
			}
			told = true
		}
		if n.catchingUp.Load() && n.caughtUp(&target) {
			n.catchingUp.Store(false)
		}
		if !n.catchingUp.Load() && n.marked.Load() {
			err := n.cfg.FS.Remove(path)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				err = n.cfg.FS.SyncDir(filepath.Dir(path))
			}
			if err != nil {
				n.lg.Error("cannot remove "+path+": this node holds back its vote again after a restart, until caught up", "error", err)
			}
			n.lg.Info("this node holds what the cluster committed: it votes from now on", "node_id", n.cfg.ID)
			n.marked.Store(false)
		}
		// A cluster of one voter never forms (its only voter losing its
		// disk loses it all): nothing to tell.
		if (told || len(n.cfg.Voters) < 2) && !n.catchingUp.Load() && !n.marked.Load() {
			return
		}
		select {
		case <-n.quit:
			return
		default:
		}
		end, _ := n.cfg.Meta.End()
		n.cfg.Meta.WaitApplied(end+1, 100*time.Millisecond)
	}
}
