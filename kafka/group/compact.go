package group

import (
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/segment"
)

// DefaultCompactBytes is the size from which the offsets partition is
// compacted (Config.CompactBytes).
const DefaultCompactBytes = 64 << 20

// Compact rewrites the offsets partition once it is at least
// Config.CompactBytes and twice its size after the last compaction: the
// state its records replay to (groups, their members, committed offsets) is
// appended anew after a roll and, once durable, the segments before it are
// deleted. Without it the partition grows with every commit and a restart
// replays all of them.
//
// The state is taken from a replay of the log, not from memory: a commit is
// applied to memory only once durable, so memory can lag the log. Kafka
// compacts this partition by key; that would be wrong here, where deleting
// a group (its metadata tombstone) also removes offsets committed in flight
// that have no tombstone of their own. A crash at any point leaves a log
// that replays to the same state: the old segments go only after the copy
// is durable, and replaying old records before the copy is harmless.
//
// It reports whether it compacted.
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
	start := time.Now()
	// Replay what is durable now without holding up the groups, then,
	// holding them, the rest up to the roll: no write can come between the
	// state read and its copy.
	scratch := &Coordinator{log: c.log, groups: map[string]*group{}}
	next, err := scratch.replayFrom(c.log.StartOffset())
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, nil
	}
	at, err := c.log.Roll()
	if err == nil {
		_, err = scratch.replayFrom(next)
	}
	var writes []appended
	if err == nil {
		writes = scratch.copyState(c.write)
	}
	c.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("group: compact %s: %w", Topic, err)
	}
	if err := waitAll(writes); err != nil {
		return false, fmt.Errorf("group: compact %s: %w", Topic, err)
	}
	if _, err := c.log.DeleteSegmentsBefore(at); err != nil {
		return false, fmt.Errorf("group: compact %s: %w", Topic, err)
	}
	after := c.log.Size()
	c.mu.Lock()
	c.compactedSize = after
	c.mu.Unlock()
	c.lg.Info("compacted the offsets partition", "bytes_before", size, "bytes_after", after, "groups", len(scratch.groups), "took", time.Since(start))
	return true, nil
}

// copyState writes c's state with write, in batches: each group's metadata
// record, then its offsets, then the offsets pending in transactions.
func (c *Coordinator) copyState(write func([]segment.Record, time.Time) appended) []appended {
	var recs []segment.Record
	for _, name := range sortedKeys(c.groups) {
		g := c.groups[name]
		recs = append(recs, segment.Record{Key: groupKey(name), Value: g.metadataValue().AppendTo(nil)})
		for _, topic := range sortedKeys(g.offsets) {
			for _, p := range sortedKeys(g.offsets[topic]) {
				recs = append(recs, offsetRecord(name, topic, p, g.offsets[topic][p]))
			}
		}
	}
	// Offsets of transactions not yet ended, after the committed ones: a
	// marker after the copy ends them as it would have the originals.
	return append(writeBatches(write, recs, time.Now()), c.copyPending(time.Now())...)
}
