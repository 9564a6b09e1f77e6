package group

import (
	"slices"
	"time"

	"github.com/chronik-stream/chronik/segment"
)

// DefaultOffsetsRetention is Kafka's offsets.retention.minutes: 7 days.
const DefaultOffsetsRetention = 7 * 24 * time.Hour

// OffsetsRetention is how long offsets nothing uses are kept.
func (c *Coordinator) OffsetsRetention() time.Duration {
	if c.cfg.OffsetsRetention > 0 {
		return c.cfg.OffsetsRetention
	}
	return DefaultOffsetsRetention
}

// ExpireOffsets deletes the committed offsets that nothing uses any more,
// as Kafka does (KIP-211): all of a consumer group's once it has been
// empty for the retention; those of a group without members (offsets
// committed without group management) and the unsubscribed topics of a
// stable consumer group once their commit is that old. A group left empty
// without offsets goes too. Without it every group ever used (a console
// consumer's random group id) stayed, in memory and in every compaction.
// The tombstones are durable when it returns; it reports how many offsets
// went.
func (c *Coordinator) ExpireOffsets(now time.Time) (int, error) {
	cutoff := now.Add(-c.OffsetsRetention()).UnixMilli()
	c.mu.Lock()
	if c.closed || !c.active() {
		c.mu.Unlock()
		return 0, nil
	}
	var recs []segment.Record
	expired := 0
	for _, name := range sortedKeys(c.groups) {
		g := c.groups[name]
		var old func(o offset, topic string) bool
		switch {
		case g.state == Empty && g.protocolType != "":
			empty := g.stateSince.UnixMilli()
			old = func(offset, string) bool { return empty <= cutoff }
		case g.protocolType == "":
			old = func(o offset, _ string) bool { return o.timestamp <= cutoff }
		case g.state == Stable && g.protocolType == "consumer":
			subscribed := g.subscribedTopics()
			old = func(o offset, topic string) bool { return o.timestamp <= cutoff && !slices.Contains(subscribed, topic) }
		default:
			continue
		}
		for _, topic := range sortedKeys(g.offsets) {
			for _, p := range sortedKeys(g.offsets[topic]) {
				if old(g.offsets[topic][p], topic) {
					recs = append(recs, segment.Record{Key: offsetKey(name, topic, p)})
					delete(g.offsets[topic], p)
					expired++
				}
			}
			if len(g.offsets[topic]) == 0 {
				delete(g.offsets, topic)
			}
		}
		if g.state == Empty && len(g.offsets) == 0 && len(g.pending) == 0 {
			recs = append(recs, segment.Record{Key: groupKey(name)})
			g.stopTimers()
			delete(c.groups, name)
		}
	}
	writes := writeBatches(c.write, recs, now)
	c.mu.Unlock()
	if expired > 0 {
		c.lg.Info("expired committed offsets", "offsets", expired)
	}
	return expired, waitAll(writes)
}

// Config is the coordinator's configuration, as it was opened with.
func (c *Coordinator) Config() Config { return c.cfg }
