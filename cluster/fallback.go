package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/raft"
	"github.com/chronik-stream/chronik/segment"
)

// The Raft fallback path (NodeConfig.Fallback, --disable-metadata-wal):
// the controller proposes each metadata change as a Raft entry holding its
// batch; every node writes committed entries' batches to its metadata log
// in Raft's order (eventlog.AppendCommitted), so the logs, dumps and
// replay are the same as on the fast path.

// proposal header: version, proposer, sequence; then the batch.
const proposalVersion = 1

type applied struct {
	offset int64
	err    error
}

func encodeProposal(proposer int32, seq uint64, batch []byte) []byte {
	b := []byte{proposalVersion}
	b = binary.BigEndian.AppendUint32(b, uint32(proposer))
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, batch...)
}

func decodeProposal(data []byte) (proposer int32, seq uint64, batch []byte, err error) {
	if len(data) < 13 || data[0] != proposalVersion {
		return 0, 0, nil, errors.New("cluster: bad proposal")
	}
	return int32(binary.BigEndian.Uint32(data[1:])), binary.BigEndian.Uint64(data[5:]), data[13:], nil
}

// firstSeq is where a run of a node starts numbering its proposals: at
// random, not at 0. An entry proposed in an earlier run and committed but
// not applied before a crash is applied after the restart, and answers
// the waiter of its proposer and sequence: counted from 0 each run, that
// was the waiter of a new proposal with the same number, which was then
// told its change was made (or refused) by the old entry's outcome.
func firstSeq() uint64 { return rand.Uint64() }

// appendRaft proposes events through Raft and waits until this node has
// applied them (after a majority committed them).
func (n *Node) appendRaft(timeout time.Duration, events ...eventlog.Event) (int64, error) {
	n.mu.Lock()
	if !n.leading {
		n.mu.Unlock()
		return 0, ErrNotController
	}
	n.seq++
	seq := n.seq
	ch := make(chan applied, 1)
	n.waiters[seq] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.waiters, seq)
		n.mu.Unlock()
	}()
	batch, err := n.cfg.Meta.EncodeBatch(events...)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.driver().Propose(ctx, encodeProposal(n.cfg.ID, seq, batch)); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrTransferring) {
			return 0, ErrNotController
		}
		return 0, err
	}
	select {
	case r := <-ch:
		return r.offset, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w (%v): %w", ErrNotCommitted, timeout, context.DeadlineExceeded)
	}
}

// applyEntries writes the batches of the entries one Ready committed to
// the metadata log, in Raft's order and with one sync for all of them (on
// the driver's goroutine), and answers their proposers that are here.
func (n *Node) applyEntries(es []raft.Entry) {
	type proposal struct {
		proposer int32
		seq      uint64
		count    int64
		batch    int // index in batches, -1 for none
	}
	props := make([]proposal, len(es))
	var batches []eventlog.CommittedBatch
	for i, e := range es {
		props[i].batch = -1
		if len(e.Data) == 0 {
			continue // a new leader's empty entry
		}
		proposer, seq, batch, err := decodeProposal(e.Data)
		if err != nil {
			n.lg.Error("raft fallback: skipping a bad entry", "index", e.Index, "error", err)
			continue
		}
		props[i] = proposal{proposer: proposer, seq: seq, batch: len(batches)}
		if h, herr := segment.ParseHeader(batch); herr == nil {
			props[i].count = int64(h.RecordCount)
		}
		batches = append(batches, eventlog.CommittedBatch{Batch: batch, Epoch: int32(e.Term)})
	}
	nexts, errs := n.cfg.Meta.AppendCommittedAll(batches, n.replay)
	// Once the metadata log has failed, entries are no longer noted as
	// applied: a compaction of Raft's log must not cover an entry the
	// metadata log does not hold (this node would never get it again).
	// controllerWork takes the node out of the quorum.
	failed := n.cfg.Meta.Failed() != nil
	if failed {
		n.poke()
	}
	for i, e := range es {
		p := props[i]
		if p.batch < 0 {
			if !failed {
				n.noteApplied(e.Index, len(e.Data))
			}
			continue
		}
		next, err := nexts[p.batch], errs[p.batch]
		n.replay = next
		if failed = failed || errors.Is(err, eventlog.ErrFailed); !failed {
			n.noteApplied(e.Index, len(e.Data))
		}
		if errors.Is(err, eventlog.ErrReplayed) {
			continue
		}
		if errors.Is(err, eventlog.ErrDiverged) {
			// This node's metadata is not the cluster's committed history:
			// it can neither serve it nor lead (fatal stops the driver: not
			// on its goroutine).
			go n.fatal(fmt.Errorf("raft fallback: committed entry %d (term %d, proposed by node %d) does not match this node's metadata log, which holds what the cluster never committed: %w; "+
				"to take the cluster's metadata again, stop this node, remove %s and %s, and start it: it catches up as a node with a new disk does and keeps its partitions",
				e.Index, e.Term, p.proposer, err, n.cfg.Meta.Dir(), n.cfg.RaftDir))
		} else if err != nil && !errors.Is(err, eventlog.ErrRefused) {
			n.lg.Error("raft fallback: cannot write a committed entry to the metadata log", "index", e.Index, "error", err)
		}
		if p.proposer != n.cfg.ID {
			continue
		}
		n.mu.Lock()
		ch := n.waiters[p.seq]
		n.mu.Unlock()
		if ch != nil {
			ch <- applied{offset: next - p.count, err: err}
		}
	}
}

// DefaultRaftCompactEntries is how many entries the fallback path applies
// between compactions of Raft's log (NodeConfig.RaftCompactEntries).
const DefaultRaftCompactEntries = 8192

// DefaultRaftCompactBytes is how many bytes of entries it applies between
// them (NodeConfig.RaftCompactBytes): a few hundred large changes hold
// as much as thousands of small ones, in memory and in Raft's file.
const DefaultRaftCompactBytes = 64 << 20

// A Raft snapshot on the fallback path: a version, the metadata log offset
// it stands for (after the last entry it replaces), and the metadata
// log's snapshot at that offset, which a follower behind it installs.
const raftSnapshotVersion = 1

func encodeRaftSnapshot(offset int64, meta []byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{raftSnapshotVersion}, uint64(offset))
	return append(b, meta...)
}

func decodeRaftSnapshot(data []byte) (int64, []byte, error) {
	if len(data) < 9 || data[0] != raftSnapshotVersion {
		return 0, nil, errors.New("cluster: bad Raft snapshot")
	}
	offset := int64(binary.BigEndian.Uint64(data[1:]))
	if offset < 0 {
		return 0, nil, fmt.Errorf("cluster: Raft snapshot at negative metadata offset %d", offset)
	}
	return offset, data[9:], nil
}

// indexOffset is an applied entry and the metadata log offset after it.
type indexOffset struct {
	index  uint64
	offset int64
}

// noteApplied records where the metadata log stands after entry index, of
// size bytes (driver goroutine), and starts a compaction of Raft's log
// when enough entries, or bytes of them, were applied since the last one.
func (n *Node) noteApplied(index uint64, size int) {
	every, bytes := n.cfg.RaftCompactEntries, n.cfg.RaftCompactBytes
	if every <= 0 {
		every = DefaultRaftCompactEntries
	}
	if bytes <= 0 {
		bytes = DefaultRaftCompactBytes
	}
	n.mu.Lock()
	n.applied = append(n.applied, indexOffset{index, n.replay})
	n.appliedBytes += int64(size)
	start := (len(n.applied) >= every || n.appliedBytes >= bytes) && !n.compacting
	if start {
		n.compacting, n.appliedBytes = true, 0
	}
	n.mu.Unlock()
	if start {
		n.bg.Go(n.compactRaft)
	}
}

// compactRaft replaces Raft's log up to an applied entry with a snapshot:
// the metadata log's snapshot at the offset after that entry. Raft's log
// otherwise grew with every metadata change, all of it in memory, and a
// restart replayed all of it. The metadata log keeps its segments (the
// fallback path opens it with KeepSegments) until Raft no longer replays
// them: those before the previous Raft snapshot go after each compaction.
func (n *Node) compactRaft() {
	defer func() {
		n.mu.Lock()
		n.compacting = false
		n.mu.Unlock()
	}()
	meta := n.cfg.Meta
	if err := meta.Snapshot(); err != nil {
		n.lg.Warn("raft fallback: cannot snapshot the metadata log", "error", err)
		return
	}
	data, offset, err := meta.LatestSnapshot()
	if err != nil {
		n.lg.Warn("raft fallback: cannot read the metadata snapshot", "error", err)
		return
	}
	n.mu.Lock()
	var index uint64
	for _, a := range n.applied {
		if a.offset > offset {
			break
		}
		if a.offset == offset {
			index = a.index // the last entry before the snapshot's offset
		}
	}
	prev := n.compactedAt
	n.mu.Unlock()
	if index == 0 {
		return // the snapshot is older than the entries noted: next time
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.driver().Compact(ctx, index, encodeRaftSnapshot(offset, data)); err != nil {
		n.lg.Warn("raft fallback: cannot compact Raft's log", "index", index, "error", err)
		return
	}
	n.mu.Lock()
	n.applied = slices.DeleteFunc(n.applied, func(a indexOffset) bool { return a.index <= index })
	n.compactedAt = offset
	n.mu.Unlock()
	if prev > 0 {
		if _, err := meta.Segment().DeleteSegmentsBefore(prev); err != nil {
			n.lg.Warn("raft fallback: cannot delete metadata segments before the previous Raft snapshot", "offset", prev, "error", err)
		}
	}
	n.lg.Info("raft fallback: compacted Raft's log", "index", index, "metadata_offset", offset, "snapshot_bytes", len(data))
}

// restoreSnapshot makes the metadata log stand where a Raft snapshot does:
// at start, and when the leader sent one because this node is behind its
// compacted entries (driver goroutine). A metadata log behind the
// snapshot installs the metadata snapshot it carries.
func (n *Node) restoreSnapshot(s raft.Snapshot) error {
	offset, data, err := decodeRaftSnapshot(s.Data)
	if err != nil {
		return err
	}
	if n.cfg.Meta.Committed() < offset {
		if err := n.cfg.Meta.InstallSnapshot(data); err != nil {
			return fmt.Errorf("cluster: install the metadata snapshot of Raft snapshot %d: %w", s.Index, err)
		}
	}
	n.replay = offset
	n.mu.Lock()
	n.applied = slices.DeleteFunc(n.applied, func(a indexOffset) bool { return a.index <= s.Index })
	n.compactedAt = offset
	n.mu.Unlock()
	return nil
}
