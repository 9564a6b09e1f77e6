package group

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

// Offsets committed in a transaction (TxnOffsetCommit) are written, as in
// Kafka, as a transactional batch of the producer to the offsets partition
// and held pending; the transaction's marker, which the transaction
// coordinator writes here too (EndTxn), makes them committed or drops
// them. A replay does the same with the batches and markers it reads.

// pendingTxn is a producer's offsets waiting for its transaction's end, by
// group, topic and partition.
type pendingTxn struct {
	epoch   int16
	offsets map[string]map[string]map[int32]offset
}

// addTxnOffset notes an offset of a transaction of producer pid.
func (c *Coordinator) addTxnOffset(pid int64, epoch int16, grp, topic string, p int32, o offset) {
	if c.pending == nil {
		c.pending = map[int64]*pendingTxn{}
	}
	pt := c.pending[pid]
	if pt == nil || epoch > pt.epoch {
		pt = &pendingTxn{epoch: epoch, offsets: map[string]map[string]map[int32]offset{}}
		c.pending[pid] = pt
	}
	if pt.offsets[grp] == nil {
		pt.offsets[grp] = map[string]map[int32]offset{}
	}
	if pt.offsets[grp][topic] == nil {
		pt.offsets[grp][topic] = map[int32]offset{}
	}
	pt.offsets[grp][topic][p] = o
}

// endPending ends producer pid's transaction: committed, its offsets
// become the groups' committed offsets.
func (c *Coordinator) endPending(pid int64, commit bool) {
	pt := c.pending[pid]
	if pt == nil {
		return
	}
	delete(c.pending, pid)
	if !commit {
		return
	}
	for name, topics := range pt.offsets {
		g := c.groups[name]
		if g == nil {
			g = newGroup(name, time.Now())
			c.groups[name] = g
		}
		for topic, ps := range topics {
			for p, o := range ps {
				g.setOffset(topic, p, o)
			}
		}
	}
}

// unstable reports whether a transaction holds an offset of the group's
// partition pending.
func (c *Coordinator) unstable(grp, topic string, p int32) bool {
	for _, pt := range c.pending {
		if _, ok := pt.offsets[grp][topic][p]; ok {
			return true
		}
	}
	return false
}

// writeAs is write for a producer's transactional batch.
func (c *Coordinator) writeAs(pid int64, epoch int16) func([]segment.Record, time.Time) appended {
	return func(recs []segment.Record, now time.Time) appended {
		body := segment.AppendRecords(nil, recs)
		batch := segment.BuildBatchAs(body, len(recs), segment.CodecNone, now.UnixMilli(),
			segment.BatchProducer{ID: pid, Epoch: epoch, Sequence: -1, Transactional: true})
		a, err := c.log.Append(batch, 0, -1)
		return appended{a: a, n: len(recs), err: err}
	}
}

// TxnCommit serves TxnOffsetCommit: the offsets are written for the
// producer's transaction and become committed with its commit marker. The
// transaction must be open with the offsets partition added
// (INVALID_TXN_STATE otherwise). The returned function blocks until they
// are durable.
func (c *Coordinator) TxnCommit(req *kmsg.TxnOffsetCommitRequest) func() *kmsg.TxnOffsetCommitResponse {
	sizes := make([]int, len(req.Topics))
	for i, t := range req.Topics {
		sizes[i] = len(t.Partitions)
	}
	errs := newCodes(sizes)
	answer := func() *kmsg.TxnOffsetCommitResponse {
		resp := kmsg.NewPtrTxnOffsetCommitResponse()
		for i, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, errs[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	failAll := func(code int16) func() *kmsg.TxnOffsetCommitResponse {
		fillCodes(errs, code)
		return answer
	}
	if req.Group == "" {
		return failAll(kerr.InvalidGroupID.Code)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.active() {
		return failAll(kerr.NotCoordinator.Code)
	}
	if c.cfg.InTransaction == nil || !c.cfg.InTransaction(req.ProducerID, req.ProducerEpoch) {
		// Pending offsets no marker would end would stay forever.
		return failAll(kerr.InvalidTxnState.Code)
	}
	now := time.Now()
	// v3 carries the member's generation (KIP-447): a member fenced by a
	// rebalance cannot commit for the transaction.
	if g := c.groups[req.Group]; g != nil && req.Version >= 3 && req.Generation >= 0 && g.state != Empty {
		if g.state == CompletingRebalance {
			return failAll(kerr.RebalanceInProgress.Code)
		}
		m, code := g.checkMember(req.MemberID, req.InstanceID, req.Generation)
		if code != 0 {
			return failAll(code)
		}
		c.touch(g, m, now)
	}
	var changes []change
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			epoch := int32(-1)
			if req.Version >= 2 {
				epoch = p.LeaderEpoch
			}
			ch := change{i, j, t.Topic, p.Partition, offset{offset: p.Offset, leaderEpoch: epoch, metadata: meta, timestamp: now.UnixMilli()}}
			if c.valid(errs, ch) {
				changes = append(changes, ch)
			}
		}
	}
	if len(changes) == 0 {
		return answer
	}
	wait := c.writeChanges(req.Group, changes, c.writeAs(req.ProducerID, req.ProducerEpoch), now, errs, func(ch change) {
		c.addTxnOffset(req.ProducerID, req.ProducerEpoch, req.Group, ch.topic, ch.p, ch.o)
	})
	return func() *kmsg.TxnOffsetCommitResponse {
		wait()
		return answer()
	}
}

// EndTxn writes the marker that ends producer pid's transaction in the
// offsets partition and, once it is durable, commits or drops the
// transaction's offsets. The transaction coordinator calls it for a
// transaction that added offsets (AddOffsetsToTxn).
func (c *Coordinator) EndTxn(pid int64, epoch int16, commit bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("group: the coordinator is closed")
	}
	a, err := c.log.Append(segment.BuildMarker(pid, epoch, commit, 0, time.Now().UnixMilli()), 0, -1)
	c.mu.Unlock()
	if err == nil {
		err = a.Wait()
	}
	if err != nil {
		return fmt.Errorf("group: write a transaction marker to %s: %w", Topic, err)
	}
	c.mu.Lock()
	c.endPending(pid, commit)
	c.mu.Unlock()
	return nil
}

// replayBatch applies one stored batch of the offsets partition: a
// transaction's offsets are held pending, a marker ends them, other
// batches' records are applied.
func (c *Coordinator) replayBatch(h *segment.BatchHeader, batch []byte) error {
	if h.Control() {
		if typ, ok := segment.ControlType(batch); ok && (typ == segment.ControlCommit || typ == segment.ControlAbort) {
			c.endPending(h.ProducerID, typ == segment.ControlCommit)
		}
		return nil
	}
	recs, err := segment.DecodeRecords(batch, 64<<20)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if !h.Transactional() {
			if err := c.apply(r); err != nil {
				return fmt.Errorf("offset %d: %w", r.Offset, err)
			}
			continue
		}
		var k kmsg.OffsetCommitKey
		var v kmsg.OffsetCommitValue
		if k.ReadFrom(r.Key) != nil || k.Version > 1 || r.Value == nil || v.ReadFrom(r.Value) != nil {
			return fmt.Errorf("offset %d: not a transaction's offset commit", r.Offset)
		}
		epoch := int32(-1)
		if v.Version >= 3 {
			epoch = v.LeaderEpoch
		}
		c.addTxnOffset(h.ProducerID, h.ProducerEpoch, k.Group, k.Topic, k.Partition,
			offset{at: r.Offset, offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, timestamp: v.CommitTimestamp})
	}
	return nil
}

// copyPending writes the pending transactions' offsets with writeAs, for a
// compaction: each producer's as a transactional batch of its own.
func (c *Coordinator) copyPending(now time.Time) []appended {
	var out []appended
	for pid, pt := range c.pending {
		var recs []segment.Record
		for _, name := range sortedKeys(pt.offsets) {
			for _, topic := range sortedKeys(pt.offsets[name]) {
				for _, p := range sortedKeys(pt.offsets[name][topic]) {
					recs = append(recs, offsetRecord(name, topic, p, pt.offsets[name][topic][p]))
				}
			}
		}
		out = append(out, writeBatches(c.writeAs(pid, pt.epoch), recs, now)...)
	}
	return out
}
