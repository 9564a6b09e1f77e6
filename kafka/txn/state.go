package txn

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/segment"
)

// The state partition holds one record per change of a transactional id:
// key TxnMetadataKey (the id), value TxnMetadataValue v0 (producer id and
// epoch, timeout, state, partitions, times), as Kafka's __transaction_state
// does; the last record of an id is its state.

// maxValueBytes bounds a replayed record's value (a transaction of very
// many partitions is still far below it).
const maxValueBytes = 64 << 20

func stateRecord(id string, m *meta) segment.Record {
	k := kmsg.NewTxnMetadataKey()
	k.TransactionalID = id
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis, v.State = m.pid, m.epoch, int32(m.timeout.Milliseconds()), m.status
	v.LastUpdateTimestamp, v.StartTimestamp = m.updated.UnixMilli(), -1
	if !m.started.IsZero() {
		v.StartTimestamp = m.started.UnixMilli()
	}
	parts := m.partitionLists()
	for _, topic := range slices.Sorted(maps.Keys(parts)) {
		vt := kmsg.NewTxnMetadataValueTopic()
		vt.Topic, vt.Partitions = topic, parts[topic]
		v.Topics = append(v.Topics, vt)
	}
	return segment.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

// partitionLists returns the transaction's partitions by topic, each
// list sorted.
func (m *meta) partitionLists() map[string][]int32 {
	out := make(map[string][]int32, len(m.parts))
	for topic, ps := range m.parts {
		out[topic] = slices.Sorted(maps.Keys(ps))
	}
	return out
}

func buildBatch(recs []segment.Record, now time.Time) []byte {
	return segment.BuildBatch(segment.AppendRecords(nil, recs), len(recs), segment.CodecNone, now.UnixMilli())
}

// replayFrom applies the durable records from offset off on, and returns
// the offset after the last.
func (c *Coordinator) replayFrom(off int64) (int64, error) {
	next, err := statelog.Replay(c.log, off, func(_ *segment.BatchHeader, batch []byte) error {
		recs, err := segment.DecodeRecords(batch, maxValueBytes)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := c.apply(r); err != nil {
				return fmt.Errorf("offset %d: %w", r.Offset, err)
			}
		}
		return nil
	})
	if err != nil {
		return next, fmt.Errorf("txn: replay %s: %w", Topic, err)
	}
	return next, nil
}

// apply replays one record: the id's state, or (a null value) its removal.
func (c *Coordinator) apply(r segment.Record) error {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.Key); err != nil || k.Version > 1 {
		return fmt.Errorf("not a transaction state key (version %d): %v", k.Version, err)
	}
	if r.Value == nil {
		delete(c.txns, k.TransactionalID)
		return nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(r.Value); err != nil {
		return fmt.Errorf("transaction state of %q: %w", k.TransactionalID, err)
	}
	if v.State < Empty || v.State > CompleteAbort || v.TimeoutMillis < 0 {
		return fmt.Errorf("transaction state of %q: state %d, timeout %d ms", k.TransactionalID, v.State, v.TimeoutMillis)
	}
	m := meta{pid: v.ProducerID, epoch: v.ProducerEpoch, lastEpoch: -1, timeout: time.Duration(v.TimeoutMillis) * time.Millisecond,
		status: v.State, parts: map[string]map[int32]bool{}, updated: time.UnixMilli(v.LastUpdateTimestamp)}
	if v.StartTimestamp >= 0 {
		m.started = time.UnixMilli(v.StartTimestamp)
	}
	for _, vt := range v.Topics {
		ps := map[int32]bool{}
		for _, p := range vt.Partitions {
			ps[p] = true
		}
		m.parts[vt.Topic] = ps
	}
	c.txns[k.TransactionalID] = &txn{id: k.TransactionalID, meta: m}
	return nil
}

// DefaultCompactBytes is the size from which the state partition is
// compacted.
const DefaultCompactBytes = 16 << 20

// Compact rewrites the state partition once it is at least CompactBytes
// and twice its size after the last compaction: after a roll, each id's
// state is written again and, once that is durable, the segments before
// are deleted (statelog.Compactor). It reports whether it compacted.
func (c *Coordinator) Compact() (bool, error) {
	scratch := &Coordinator{log: c.log, txns: map[string]*txn{}}
	done, before, after, err := c.compactor.Run(statelog.Owner{
		Hold:   &c.mu,
		Closed: func() bool { return c.closed },
		Replay: scratch.replayFrom,
		Copy:   func() []func() error { return c.copyState(scratch, time.Now()) },
	})
	if err != nil {
		return false, fmt.Errorf("txn: compact %s: %w", Topic, err)
	}
	if done {
		c.lg.Info("compacted the transaction state partition", "bytes_before", before, "bytes_after", after, "transactional_ids", len(scratch.txns))
	}
	return done, nil
}

// copyState appends each id's state in scratch, in batches the partition
// accepts (statelog.Split), and returns the waits for them. The caller
// holds mu.
func (c *Coordinator) copyState(scratch *Coordinator, now time.Time) []func() error {
	ids := make([]string, 0, len(scratch.txns))
	for id := range scratch.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	recs := make([]segment.Record, len(ids))
	for i, id := range ids {
		recs[i] = stateRecord(id, &scratch.txns[id].meta)
	}
	var waits []func() error
	for _, batch := range statelog.Split(recs) {
		a, err := c.log.Append(buildBatch(batch, now), 0, -1)
		if err != nil {
			waits = append(waits, func() error { return err })
		} else {
			waits = append(waits, a.Wait)
		}
	}
	return waits
}
