package group

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/segment"
)

// What OffsetCommit (Commit) and TxnOffsetCommit (TxnCommit) share: the
// per-partition error codes, the checks of each offset, and writing the
// offsets in batches and applying those that became durable.

// change is one partition's offset in a commit, at its place (i, j) in
// the request (topic i, partition j).
type change struct {
	i, j  int
	topic string
	p     int32
	o     offset
}

// newCodes returns per-partition error codes shaped like a request whose
// topics have sizes[i] partitions.
func newCodes(sizes []int) [][]int16 {
	errs := make([][]int16, len(sizes))
	for i, n := range sizes {
		errs[i] = make([]int16, n)
	}
	return errs
}

func fillCodes(errs [][]int16, code int16) {
	for i := range errs {
		for j := range errs[i] {
			errs[i][j] = code
		}
	}
}

// valid reports whether ch may be written, and sets its error if not:
// metadata over MaxMetadataBytes, or a partition that does not exist.
func (c *Coordinator) valid(errs [][]int16, ch change) bool {
	switch {
	case len(ch.o.metadata) > MaxMetadataBytes:
		errs[ch.i][ch.j] = kerr.OffsetMetadataTooLarge.Code
		return false
	case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(ch.topic, ch.p):
		errs[ch.i][ch.j] = kerr.UnknownTopicOrPartition.Code
		return false
	}
	return true
}

// writeChanges writes the changes of group with write. A commit of many
// partitions may not fit one batch (max.message.bytes: Kafka refuses it
// with INVALID_COMMIT_OFFSET_SIZE); it is written in batches and answered
// once all are durable. The returned function waits for that and, holding
// c.mu, passes each durable change to apply (its offset's log position
// set) and sets the error of each that is not: memory stays what a replay
// of the log gives. The caller holds c.mu, so the log's order is the
// order of the changes.
func (c *Coordinator) writeChanges(group string, changes []change, write func([]segment.Record, time.Time) appended, now time.Time, errs [][]int16, apply func(change)) func() {
	recs := make([]segment.Record, len(changes))
	for k, ch := range changes {
		recs[k] = offsetRecord(group, ch.topic, ch.p, ch.o)
	}
	writes := writeBatches(write, recs, now)
	return func() {
		failed := make([]error, len(writes))
		for b, w := range writes {
			failed[b] = w.wait()
		}
		c.mu.Lock()
		k := 0
		for b, w := range writes {
			for r := range w.n {
				ch := changes[k]
				k++
				if err := failed[b]; err != nil {
					errs[ch.i][ch.j] = kerr.CoordinatorNotAvailable.Code
					if errors.Is(err, segment.ErrQueueFull) {
						errs[ch.i][ch.j] = kerr.RequestTimedOut.Code
					}
					continue
				}
				ch.o.at = w.a.Base + int64(r)
				apply(ch)
			}
		}
		c.mu.Unlock()
		for _, err := range failed {
			if err != nil {
				c.lg.Error("cannot store committed offsets", "group", group, "error", err)
				break
			}
		}
	}
}
