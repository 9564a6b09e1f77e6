package txn

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Info is a transactional id's state as the admin APIs (ListTransactions,
// DescribeTransactions) report it: as last made durable.
type Info struct {
	ID            string
	ProducerID    int64
	ProducerEpoch int16
	Timeout       time.Duration
	State         kmsg.TransactionState
	Started       time.Time // zero when no transaction began
	Partitions    map[string][]int32
}

func info(id string, m *meta) Info {
	return Info{ID: id, ProducerID: m.pid, ProducerEpoch: m.epoch, Timeout: m.timeout, State: m.status, Started: m.started, Partitions: m.partitionLists()}
}

// List returns every transactional id that has a producer, by id.
func (c *Coordinator) List() []Info {
	c.mu.Lock()
	all := make([]*txn, 0, len(c.txns))
	for _, t := range c.txns {
		all = append(all, t)
	}
	c.mu.Unlock()
	var out []Info
	for _, t := range all {
		if m := t.snap.Load(); m != nil {
			out = append(out, info(t.id, m))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Ended returns how many transactions completed since the start:
// committed, aborted by their producer, and aborted by the coordinator (a
// timeout, or a new incarnation of the producer).
func (c *Coordinator) Ended() (committed, aborted, abortedByCoordinator int64) {
	return c.ended[0].Load(), c.ended[1].Load(), c.ended[2].Load()
}

// Describe returns a transactional id's state; ok is false for an id the
// coordinator does not know.
func (c *Coordinator) Describe(id string) (Info, bool) {
	c.mu.Lock()
	t := c.txns[id]
	c.mu.Unlock()
	if t == nil {
		return Info{}, false
	}
	m := t.snap.Load()
	if m == nil {
		return Info{}, false
	}
	return info(id, m), true
}
