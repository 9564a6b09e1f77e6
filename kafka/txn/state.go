package txn

import (
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

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
	topics := make([]string, 0, len(m.parts))
	for topic := range m.parts {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	for _, topic := range topics {
		vt := kmsg.NewTxnMetadataValueTopic()
		vt.Topic = topic
		for p := range m.parts[topic] {
			vt.Partitions = append(vt.Partitions, p)
		}
		sort.Slice(vt.Partitions, func(i, j int) bool { return vt.Partitions[i] < vt.Partitions[j] })
		v.Topics = append(v.Topics, vt)
	}
	return segment.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func buildBatch(recs []segment.Record, now time.Time) []byte {
	return segment.BuildBatch(segment.AppendRecords(nil, recs), len(recs), segment.CodecNone, now.UnixMilli())
}

// replayFrom applies the durable records from offset off on, and returns
// the offset after the last.
func (c *Coordinator) replayFrom(off int64) (int64, error) {
	buf := make([]byte, 0, 1<<20)
	for off < c.log.HighWatermark() {
		b, err := c.log.Read(off, 1<<20, buf[:0])
		if err != nil {
			return off, fmt.Errorf("txn: replay %s: %w", Topic, err)
		}
		for len(b) > 0 {
			h, err := segment.ParseHeader(b)
			if err != nil {
				return off, fmt.Errorf("txn: replay %s: %w", Topic, err)
			}
			recs, err := segment.DecodeRecords(b[:h.Size()], maxValueBytes)
			if err != nil {
				return off, fmt.Errorf("txn: replay %s: %w", Topic, err)
			}
			for _, r := range recs {
				if err := c.apply(r); err != nil {
					return off, fmt.Errorf("txn: replay %s at offset %d: %w", Topic, r.Offset, err)
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return off, nil
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
// are deleted. The state is a replay of the log, not memory (memory takes
// a change only once durable); a crash at any point leaves a log that
// replays to the same state. It reports whether it compacted.
func (c *Coordinator) Compact() (bool, error) {
	c.compacting.Lock()
	defer c.compacting.Unlock()
	size := c.log.Size()
	c.mu.Lock()
	minBytes, last := c.cfg.CompactBytes, c.compactedSize
	c.mu.Unlock()
	if minBytes <= 0 {
		minBytes = DefaultCompactBytes
	}
	if size < minBytes || size < 2*last {
		return false, nil
	}
	scratch := &Coordinator{log: c.log, txns: map[string]*txn{}}
	next, err := scratch.replayFrom(c.log.StartOffset())
	if err != nil {
		return false, err
	}
	// Holding mu, no change is appended between the roll and the copy.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, nil
	}
	at, err := c.log.Roll()
	if err == nil {
		_, err = scratch.replayFrom(next)
	}
	var writes []*segment.Appended
	if err == nil {
		ids := make([]string, 0, len(scratch.txns))
		for id := range scratch.txns {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		// Batches of at most 256 KiB of records (one record more if it
		// alone is larger), well under max.message.bytes.
		now := time.Now()
		var recs []segment.Record
		bytes := 0
		flush := func() {
			var a *segment.Appended
			if a, err = c.log.Append(buildBatch(recs, now), 0, -1); err == nil {
				writes = append(writes, a)
			}
			recs, bytes = nil, 0
		}
		for _, id := range ids {
			r := stateRecord(id, &scratch.txns[id].meta)
			if len(recs) > 0 && bytes+len(r.Key)+len(r.Value) > 256<<10 {
				if flush(); err != nil {
					break
				}
			}
			recs, bytes = append(recs, r), bytes+len(r.Key)+len(r.Value)
		}
		if err == nil && len(recs) > 0 {
			flush()
		}
	}
	c.mu.Unlock()
	for _, a := range writes {
		if err == nil {
			err = a.Wait()
		}
	}
	if err == nil {
		_, err = c.log.DeleteSegmentsBefore(at)
	}
	if err != nil {
		return false, fmt.Errorf("txn: compact %s: %w", Topic, err)
	}
	after := c.log.Size()
	c.mu.Lock()
	c.compactedSize = after
	c.mu.Unlock()
	c.lg.Info("compacted the transaction state partition", "bytes_before", size, "bytes_after", after, "transactional_ids", len(scratch.txns))
	return true, nil
}
