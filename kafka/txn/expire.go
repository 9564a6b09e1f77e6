package txn

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/segment"
)

// DefaultIDExpiration is how long a transactional id is kept after its
// producer last began or ended a transaction (Kafka's
// transactional.id.expiration.ms: seven days).
const DefaultIDExpiration = 7 * 24 * time.Hour

// Expire removes the transactional ids with no transaction open whose
// last change is older than after: a tombstone each (in batches), durable
// before the ids go from memory; compaction then drops their records.
// Without it every id ever used stays, in memory and in the log: some
// clients (Flink's exactly-once sink) make new ids all the time. An id
// busy with a request is left for the next sweep. It returns how many went.
func (c *Coordinator) Expire(now time.Time, after time.Duration) (int, error) {
	cutoff := now.Add(-after)
	c.mu.Lock()
	var all []*txn
	for _, t := range c.txns {
		all = append(all, t)
	}
	c.mu.Unlock()
	var gone []*txn
	defer func() {
		for _, t := range gone {
			t.mu.Unlock()
		}
	}()
	for _, t := range all {
		if !t.mu.TryLock() {
			continue
		}
		if t.gone || t.pid < 0 || t.status == Ongoing || t.status == PrepareCommit || t.status == PrepareAbort || !t.updated.Before(cutoff) {
			t.mu.Unlock()
			continue
		}
		gone = append(gone, t)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	recs := make([]segment.Record, len(gone))
	for i, t := range gone {
		k := kmsg.NewTxnMetadataKey()
		k.TransactionalID = t.id
		recs[i] = segment.Record{Key: k.AppendTo(nil)}
	}
	var writes []*segment.Appended
	var err error
	for _, batch := range statelog.Split(recs) {
		c.mu.Lock()
		var a *segment.Appended
		if a, err = c.log.Append(buildBatch(batch, now), 0, -1); err == nil {
			writes = append(writes, a)
		}
		c.mu.Unlock()
		if err != nil {
			break
		}
	}
	for _, a := range writes {
		if err == nil {
			err = a.Wait()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("txn: expire transactional ids: %w", err)
	}
	c.mu.Lock()
	c.pidMu.Lock()
	for _, t := range gone {
		t.gone = true
		delete(c.txns, t.id)
		if c.byPID[t.pid] == t {
			delete(c.byPID, t.pid)
		}
	}
	c.pidMu.Unlock()
	c.mu.Unlock()
	c.lg.Info("expired idle transactional ids", "ids", len(gone), "idle_for", after)
	return len(gone), nil
}
