package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.driver().Propose(ctx, encodeProposal(n.cfg.ID, seq, n.cfg.Meta.EncodeBatch(events...))); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrTransferring) {
			return 0, ErrNotController
		}
		return 0, err
	}
	select {
	case r := <-ch:
		return r.offset, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("cluster: metadata change not committed by a majority within %v", timeout)
	}
}

// applyEntry writes a committed entry's batch to the metadata log (on the
// driver's goroutine, in Raft's order) and answers its proposer if it is
// here.
func (n *Node) applyEntry(e raft.Entry) {
	if len(e.Data) == 0 {
		return // a new leader's empty entry
	}
	proposer, seq, batch, err := decodeProposal(e.Data)
	if err != nil {
		n.lg.Error("raft fallback: skipping a bad entry", "index", e.Index, "error", err)
		return
	}
	count := int64(0)
	if h, herr := segment.ParseHeader(batch); herr == nil {
		count = int64(h.RecordCount)
	}
	next, err := n.cfg.Meta.AppendCommitted(batch, int32(e.Term), n.replay)
	n.replay = next
	if errors.Is(err, eventlog.ErrReplayed) {
		return
	}
	if err != nil && !errors.Is(err, eventlog.ErrRefused) {
		n.lg.Error("raft fallback: cannot write a committed entry to the metadata log", "index", e.Index, "error", err)
	}
	if proposer != n.cfg.ID {
		return
	}
	n.mu.Lock()
	ch := n.waiters[seq]
	n.mu.Unlock()
	if ch != nil {
		ch <- applied{offset: next - count, err: err}
	}
}
