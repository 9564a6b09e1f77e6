package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronik-stream/chronik/gossip"
	"github.com/chronik-stream/chronik/segment"
)

// bootstrapVoters returns the voters a bootstrap-expect cluster settled on:
// from RaftDir if this node knew them before; else the voters the other
// nodes hold, when they gossip them (a node started after the cluster
// formed, or started again with an empty data directory, takes the
// cluster's voters, and is a broker that is not a voter if it is not one
// of them); else the first BootstrapExpect nodes gossip shows (this one
// included), by id, once that view has held for bootstrapSettle, kept
// once every one of them gossips the same (proposeVoters), so that nodes
// started together settle on one set or refuse to start. Written down for
// later starts.
func (n *Node) bootstrapVoters() ([]int32, error) {
	path := filepath.Join(n.cfg.RaftDir, "voters")
	if b, err := segment.ReadFile(n.cfg.FS, path, maxVotersFile); err == nil {
		ids, err := parseVoters(b, n.cfg.ID)
		if err != nil {
			return nil, fmt.Errorf("cluster: %s: %w (it holds the voters this node bootstrapped with; restore it, or start with --voters)", path, err)
		}
		if err := n.gsp.SetVoters(ids, time.Second); err != nil {
			n.lg.Warn("bootstrap: cannot gossip the voters yet", "error", err)
		}
		return ids, sameVoters(n.gsp.Members(), ids, "bootstrapped with (kept in "+path+")")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	keep := func(ids []int32) ([]int32, error) {
		var text strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&text, "%d\n", id)
		}
		if err := segment.ReplaceFile(n.cfg.FS, path, path+".tmp", []byte(text.String())); err != nil {
			return nil, fmt.Errorf("cluster: write %s: %w", path, err)
		}
		return ids, nil
	}
	var seen []int32
	var since, last time.Time
	for ; ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-n.quit:
			return nil, errors.New("cluster: stopped while bootstrapping")
		default:
		}
		members := n.gsp.Members()
		held, err := heldVoters(members)
		if err != nil {
			return nil, err
		}
		if held != nil {
			if err := n.gsp.SetVoters(held, time.Second); err != nil {
				n.lg.Warn("bootstrap: cannot gossip the voters yet", "error", err)
			}
			n.lg.Info("bootstrap: the cluster's voters, as its nodes hold them", "voters", held)
			return keep(held)
		}
		ids := []int32{n.cfg.ID}
		for _, m := range members {
			if !slices.Contains(ids, m.NodeID) {
				ids = append(ids, m.NodeID)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, seen) {
			seen, since = ids, time.Now()
		}
		if len(ids) >= n.cfg.BootstrapExpect && time.Since(since) >= bootstrapSettle {
			chosen := ids[:n.cfg.BootstrapExpect]
			if slices.Contains(chosen, n.cfg.ID) {
				return n.proposeVoters(chosen, keep)
			}
			// Those nodes choose; this one takes what they gossip.
		}
		if time.Since(last) > 5*time.Second {
			n.lg.Info("bootstrap: waiting for nodes", "have", len(ids), "expect", n.cfg.BootstrapExpect)
			last = time.Now()
		}
	}
}

// bootstrapSettle is how long the nodes gossip shows must stay the same
// before a bootstrapping node chooses the voters, and the least it then
// gossips its choice before it keeps it: nodes started together see one
// another within it.
var bootstrapSettle = time.Second

// proposeVoters gossips the voters this node chose and keeps them once
// every one of them gossips the same (at least bootstrapSettle later): a
// node keeps a set only when all its voters hold it, so two nodes that
// chose apart (they saw different nodes) never both keep theirs; they
// refuse to start, as does a node whose voters do not all confirm within
// bootstrapConfirm.
func (n *Node) proposeVoters(chosen []int32, keep func([]int32) ([]int32, error)) ([]int32, error) {
	if err := n.gsp.SetVoters(chosen, time.Second); err != nil {
		return nil, fmt.Errorf("cluster: bootstrap: gossip the voters: %w", err)
	}
	start := time.Now()
	for ; ; time.Sleep(50 * time.Millisecond) {
		members := n.gsp.Members()
		if err := sameVoters(members, chosen, "chose"); err != nil {
			_ = n.gsp.SetVoters(nil, time.Second)
			return nil, fmt.Errorf("%w: the nodes started together chose apart (they saw different nodes); start them with --voters", err)
		}
		var unconfirmed []int32
		for _, id := range chosen {
			i := slices.IndexFunc(members, func(m gossip.Meta) bool { return m.NodeID == id })
			if id != n.cfg.ID && (i < 0 || len(members[i].Voters) == 0) {
				unconfirmed = append(unconfirmed, id)
			}
		}
		if len(unconfirmed) == 0 && time.Since(start) >= bootstrapSettle {
			n.lg.Info("bootstrap: voters chosen", "voters", chosen)
			return keep(chosen)
		}
		select {
		case <-n.quit:
			return nil, errors.New("cluster: stopped while bootstrapping")
		default:
		}
		if time.Since(start) > bootstrapConfirm {
			_ = n.gsp.SetVoters(nil, time.Second)
			return nil, fmt.Errorf("cluster: bootstrap: this node chose the voters %v, and nodes %v have not confirmed them within %v (are they running, with --bootstrap-expect %d?); start the nodes with --voters",
				chosen, unconfirmed, bootstrapConfirm, n.cfg.BootstrapExpect)
		}
	}
}

// bootstrapConfirm bounds the wait for the chosen voters to confirm.
const bootstrapConfirm = 30 * time.Second

// heldVoters returns the voters the members hold, nil if none holds any;
// members holding different voters are an error.
func heldVoters(members []gossip.Meta) ([]int32, error) {
	var held []int32
	var by int32
	for _, m := range members {
		switch {
		case len(m.Voters) == 0:
		case held == nil:
			held, by = sortedVoters(m.Voters), m.NodeID
		case !slices.Equal(held, sortedVoters(m.Voters)):
			return nil, fmt.Errorf("cluster: node %d holds the voters %v and node %d the voters %v: the nodes of a cluster hold the same voters; "+
				"start them with --voters", by, held, m.NodeID, sortedVoters(m.Voters))
		}
	}
	return held, nil
}

// sameVoters checks that no member holds voters other than ids, which this
// node holds as what says ("was given", "chose").
func sameVoters(members []gossip.Meta, ids []int32, what string) error {
	want := sortedVoters(ids)
	for _, m := range members {
		if len(m.Voters) == 0 || len(ids) == 0 {
			continue
		}
		if theirs := sortedVoters(m.Voters); !slices.Equal(theirs, want) {
			return fmt.Errorf("cluster: node %d (replication %s) holds the voters %v, and this node %s %v: "+
				"every node of a cluster holds the same voters, or two controllers could be elected at once; "+
				"start this node with --voters %s (a cluster's voters are fixed when it forms)", m.NodeID, m.ReplicationAddr, theirs, what, want, joinIDs(theirs))
		}
	}
	return nil
}

func sortedVoters(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// maxVotersFile bounds the voters file: ids of up to 10 digits, one a
// line, for far more voters than a cluster has.
const maxVotersFile = 4096

// parseVoters reads a voters file: node ids, one a line, as CheckVoters
// wants them; sorted. This node may not be among them (it took the
// cluster's voters, and is a broker that is not a voter).
func parseVoters(b []byte, self int32) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a node id", f)
		}
		ids = append(ids, int32(v))
	}
	if err := CheckVoters(ids, self); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// CheckVoters checks a list of voters: distinct positive node ids (Raft
// takes 0 for "no node"). A node not among them takes part in no vote
// (a broker that is not a voter).
func CheckVoters(ids []int32, self int32) error {
	if self <= 0 {
		return fmt.Errorf("node id %d cannot be a voter: the nodes of a cluster have positive ids", self)
	}
	if len(ids) == 0 {
		return errors.New("no voters")
	}
	if len(ids) > gossip.MaxVoters {
		return fmt.Errorf("%d voters: a cluster has at most %d (a Raft quorum of 3 or 5 is usual; the other nodes are brokers that are not voters)", len(ids), gossip.MaxVoters)
	}
	for i, id := range ids {
		if id <= 0 {
			return fmt.Errorf("%d is not a voter's node id: the nodes of a cluster have positive ids", id)
		}
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("node %d is listed twice", id)
		}
	}
	return nil
}
