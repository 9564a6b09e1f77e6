package group

import (
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
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
// that have no tombstone of their own. (statelog.Compactor says why a
// crash at any point leaves a log that replays to the same state.) It
// reports whether it compacted.
func (c *Coordinator) Compact() (bool, error) {
	start := time.Now()
	scratch := &Coordinator{log: c.log, groups: map[string]*group{}}
	done, before, after, err := c.compactor.Run(statelog.Owner{
		Hold:   &c.mu,
		Closed: func() bool { return c.closed },
		Replay: scratch.replayFrom,
		Copy: func() []func() error {
			var waits []func() error
			for _, w := range scratch.copyState(c.write) {
				waits = append(waits, w.wait)
			}
			return waits
		},
	})
	if err != nil {
		return false, fmt.Errorf("group: compact %s: %w", Topic, err)
	}
	if done {
		c.lg.Info("compacted the offsets partition", "bytes_before", before, "bytes_after", after, "groups", len(scratch.groups), "took", time.Since(start))
	}
	return done, nil
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
