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

	"github.com/chronik-stream/chronik/segment"
)

// bootstrapVoters returns the voters a bootstrap-expect cluster settled on:
// from RaftDir if this node knew them before, else the first
// BootstrapExpect nodes gossip shows (this one included), by id, written
// down for later starts.
func (n *Node) bootstrapVoters() ([]int32, error) {
	path := filepath.Join(n.cfg.RaftDir, "voters")
	if b, err := segment.ReadFile(n.cfg.FS, path, maxVotersFile); err == nil {
		ids, err := parseVoters(b, n.cfg.ID)
		if err != nil {
			return nil, fmt.Errorf("cluster: %s: %w (it holds the voters this node bootstrapped with; restore it, or start with --voters)", path, err)
		}
		return ids, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	for last := (time.Time{}); ; time.Sleep(50 * time.Millisecond) {
		ids := []int32{n.cfg.ID}
		for _, m := range n.gsp.Members() {
			if m.NodeID > 0 && !slices.Contains(ids, m.NodeID) {
				ids = append(ids, m.NodeID)
			}
		}
		slices.Sort(ids)
		if len(ids) >= n.cfg.BootstrapExpect {
			ids = ids[:n.cfg.BootstrapExpect]
			if !slices.Contains(ids, n.cfg.ID) {
				return nil, fmt.Errorf("cluster: %d nodes with lower ids (%v) are already bootstrapping, or are the voters: "+
					"start this node with --voters and the cluster's voters to join it as a broker that is not a voter", n.cfg.BootstrapExpect, ids)
			}
			var text strings.Builder
			for _, id := range ids {
				fmt.Fprintf(&text, "%d\n", id)
			}
			if err := segment.ReplaceFile(n.cfg.FS, path, path+".tmp", []byte(text.String())); err != nil {
				return nil, fmt.Errorf("cluster: write %s: %w", path, err)
			}
			n.lg.Info("bootstrap: voters chosen", "voters", ids)
			return ids, nil
		}
		if time.Since(last) > 5*time.Second {
			n.lg.Info("bootstrap: waiting for nodes", "have", len(ids), "expect", n.cfg.BootstrapExpect)
			last = time.Now()
		}
		select {
		case <-n.quit:
			return nil, errors.New("cluster: stopped while bootstrapping")
		default:
		}
	}
}

// maxVotersFile bounds the voters file: ids of up to 10 digits, one a
// line, for far more voters than a cluster has.
const maxVotersFile = 4096

// parseVoters reads a voters file: node ids, one a line, as CheckVoters
// wants them, this node among them; sorted.
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
	if !slices.Contains(ids, self) {
		// This node bootstrapped as one of them.
		return nil, fmt.Errorf("this node (%d) is not among the voters %v", self, ids)
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
