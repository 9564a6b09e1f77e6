package txn

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The requests a producer sends its transaction coordinator, and the end
// of a transaction.

// InitProducerID serves InitProducerId for a transactional id: a new
// producer id, or the same id with the next epoch, which fences the
// producer's earlier incarnations; an open transaction is aborted first.
// A producer that passes its id and epoch (KIP-360) must pass the current
// ones, or those before the coordinator bumped them to abort.
func (c *Coordinator) InitProducerID(id string, timeoutMs int32, pid int64, epoch int16) (int64, int16, int16) {
	timeout := time.Duration(timeoutMs) * time.Millisecond
	if timeoutMs <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout.Code
	}
	t, code := c.lock(id, true)
	if code != 0 {
		return -1, -1, code
	}
	defer t.mu.Unlock()
	next := t.meta
	next.parts, next.status, next.timeout, next.updated = map[string]map[int32]bool{}, Empty, timeout, time.Now()
	switch {
	case t.pid < 0:
		id, err := c.cfg.NewProducerID()
		if err != nil {
			return -1, -1, kerr.CoordinatorNotAvailable.Code
		}
		next.pid, next.epoch, next.lastEpoch = id, 0, -1
		if code := c.commit(t, next); code != 0 {
			return -1, -1, code
		}
		return t.pid, t.epoch, 0
	case pid >= 0 && (pid != t.pid || epoch != t.epoch && epoch != t.lastEpoch):
		return -1, -1, kerr.ProducerFenced.Code
	}
	if t.status == Ongoing || t.status == PrepareCommit || t.status == PrepareAbort {
		commit := t.status == PrepareCommit
		if code := c.end(t, commit, t.status == Ongoing); code != 0 {
			return -1, -1, code
		}
		next.epoch, next.lastEpoch = t.epoch, t.lastEpoch
	}
	if next.epoch >= math.MaxInt16-1 {
		id, err := c.cfg.NewProducerID()
		if err != nil {
			return -1, -1, kerr.CoordinatorNotAvailable.Code
		}
		next.pid, next.epoch, next.lastEpoch = id, 0, -1
	} else {
		next.lastEpoch, next.epoch = next.epoch, next.epoch+1
	}
	if code := c.commit(t, next); code != 0 {
		return -1, -1, code
	}
	return t.pid, t.epoch, 0
}

// check finds a transactional id's entry, locked, for a producer's
// request: INVALID_PRODUCER_ID_MAPPING for an id or producer it does not
// know, INVALID_PRODUCER_EPOCH for an older epoch (a fenced producer).
func (c *Coordinator) check(id string, pid int64, epoch int16) (*txn, int16) {
	t, code := c.lock(id, false)
	if code != 0 {
		return nil, code
	}
	if t == nil {
		return nil, kerr.InvalidProducerIDMapping.Code
	}
	switch {
	case t.pid != pid:
		code = kerr.InvalidProducerIDMapping.Code
	case t.epoch != epoch:
		code = kerr.InvalidProducerEpoch.Code
	}
	if code != 0 {
		t.mu.Unlock()
		return nil, code
	}
	return t, 0
}

// AddPartitions serves AddPartitionsToTxn (and AddOffsetsToTxn, as the
// offsets partition): the partitions join the producer's transaction,
// which opens with the first. It returns a code per partition.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, parts map[string][]int32) map[string]map[int32]int16 {
	out := map[string]map[int32]int16{}
	setAll := func(code int16) map[string]map[int32]int16 {
		for topic, ps := range parts {
			out[topic] = map[int32]int16{}
			for _, p := range ps {
				out[topic][p] = code
			}
		}
		return out
	}
	t, code := c.check(id, pid, epoch)
	if code != 0 {
		return setAll(code)
	}
	defer t.mu.Unlock()
	if t.status == PrepareCommit || t.status == PrepareAbort {
		return setAll(kerr.ConcurrentTransactions.Code)
	}
	exists := func(topic string, p int32) bool {
		return topic == c.cfg.OffsetsTopic || c.cfg.PartitionExists != nil && c.cfg.PartitionExists(topic, p)
	}
	unknown := false
	for topic, ps := range parts {
		for _, p := range ps {
			unknown = unknown || !exists(topic, p)
		}
	}
	if unknown {
		setAll(kerr.OperationNotAttempted.Code)
		for topic, ps := range parts {
			for _, p := range ps {
				if !exists(topic, p) {
					out[topic][p] = kerr.UnknownTopicOrPartition.Code
				}
			}
		}
		return out
	}
	next := t.meta
	next.parts = map[string]map[int32]bool{}
	added := false
	if t.status == Ongoing {
		for topic, ps := range t.parts {
			next.parts[topic] = map[int32]bool{}
			for p := range ps {
				next.parts[topic][p] = true
			}
		}
	} else {
		next.started = time.Now()
	}
	for topic, ps := range parts {
		if next.parts[topic] == nil {
			next.parts[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			added = added || !next.parts[topic][p]
			next.parts[topic][p] = true
		}
	}
	if t.status == Ongoing && !added {
		return setAll(0)
	}
	next.status, next.updated = Ongoing, time.Now()
	return setAll(c.commit(t, next))
}

// EndTxn serves EndTxn: the producer's transaction commits or aborts. A
// retry of an end that completed is answered as it was.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit bool) int16 {
	t, code := c.check(id, pid, epoch)
	if code != 0 {
		return code
	}
	defer t.mu.Unlock()
	switch t.status {
	case Ongoing:
		return c.end(t, commit, false)
	case PrepareCommit, PrepareAbort:
		if commit != (t.status == PrepareCommit) {
			return kerr.InvalidTxnState.Code
		}
		return c.end(t, commit, false) // markers failed before: again
	case CompleteCommit, CompleteAbort:
		if commit != (t.status == CompleteCommit) {
			return kerr.InvalidTxnState.Code
		}
		return 0
	}
	return kerr.InvalidTxnState.Code
}

// end takes t's transaction through its decision, its markers and its
// completion; bump (an abort the coordinator decides: timeout, or a new
// incarnation of the producer) writes the markers with the next epoch,
// which fences the producer. The caller holds t.mu.
func (c *Coordinator) end(t *txn, commit, bump bool) int16 {
	if t.status == Ongoing {
		next := t.meta
		next.status, next.updated = PrepareAbort, time.Now()
		if commit {
			next.status = PrepareCommit
		}
		if bump {
			next.lastEpoch, next.epoch = t.epoch, t.epoch+1
		}
		if code := c.commit(t, next); code != 0 {
			return code
		}
	}
	for topic, ps := range t.parts {
		for p := range ps {
			if err := c.cfg.WriteMarker(topic, p, t.pid, t.epoch, commit); err != nil {
				c.lg.Warn("cannot write a transaction marker; the producer's retry of its end writes it again",
					"transactional_id", t.id, "topic", topic, "partition", p, "error", err)
				return kerr.CoordinatorNotAvailable.Code
			}
		}
	}
	next := t.meta
	next.parts, next.status, next.updated = map[string]map[int32]bool{}, CompleteAbort, time.Now()
	if commit {
		next.status = CompleteCommit
	}
	code := c.commit(t, next)
	if code == 0 {
		switch {
		case commit:
			c.ended[0].Add(1)
		case bump:
			c.ended[2].Add(1)
		default:
			c.ended[1].Add(1)
		}
	}
	return code
}
