package kafka

import (
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// recentBatches is how many batches per producer and partition are kept
// to answer a retry with its original offset (Kafka keeps five, the most a
// producer has in flight).
const recentBatches = 5

// producerBlock is how many producer ids the broker takes from the
// metadata log at a time.
const producerBlock = 1000

// producers is one partition's idempotent-producer state: for each
// producer id, its epoch and its last batches' sequence ranges.
type producers struct {
	mu   sync.Mutex
	byID map[int64]*producerEntry
}

type producerEntry struct {
	epoch  int16
	recent []seqRange // oldest first, at most recentBatches
}

type seqRange struct {
	first, last int32
	base        int64
}

func newProducers() *producers { return &producers{byID: map[int64]*producerEntry{}} }

// record notes a batch appended (or found at start-up) at base.
func (ps *producers) record(h *segment.BatchHeader, base int64) {
	e := ps.byID[h.ProducerID]
	if e == nil || h.ProducerEpoch != e.epoch {
		e = &producerEntry{epoch: h.ProducerEpoch}
		ps.byID[h.ProducerID] = e
	}
	e.recent = append(e.recent, seqRange{first: h.BaseSequence, last: lastSeq(h), base: base})
	if len(e.recent) > recentBatches {
		e.recent = e.recent[len(e.recent)-recentBatches:]
	}
}

func lastSeq(h *segment.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// check decides what to do with an idempotent batch: append it (code 0,
// dup false), answer it with the offset it already has (dup true), or
// refuse it with an error code.
func (ps *producers) check(h *segment.BatchHeader) (dupBase int64, dup bool, code int16) {
	e := ps.byID[h.ProducerID]
	switch {
	case e == nil || h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return 0, false, kerr.OutOfOrderSequenceNumber.Code
		}
		return 0, false, 0
	case h.ProducerEpoch < e.epoch:
		return 0, false, kerr.InvalidProducerEpoch.Code
	}
	for _, r := range e.recent {
		if r.first == h.BaseSequence && r.last == lastSeq(h) {
			return r.base, true, 0
		}
	}
	if last := e.recent[len(e.recent)-1].last; h.BaseSequence != int32((int64(last)+1)%(math.MaxInt32+1)) {
		return 0, false, kerr.OutOfOrderSequenceNumber.Code
	}
	return 0, false, 0
}

// forget drops a producer's state after a write of it failed to become
// durable: what the state says was written may not be in the log.
func (ps *producers) forget(pid int64) {
	ps.mu.Lock()
	delete(ps.byID, pid)
	ps.mu.Unlock()
}

// loadProducers rebuilds a partition's producer state from its batches'
// headers.
func loadProducers(l *segment.Log) (*producers, error) {
	ps := newProducers()
	err := l.Headers(func(h *segment.BatchHeader) error {
		if h.ProducerID >= 0 {
			ps.record(h, h.BaseOffset)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ps, nil
}

// producerIDs hands out producer ids from blocks taken from the metadata
// log (ProducerIdsAllocated), so that no id is ever given twice.
type producerIDs struct {
	mu        sync.Mutex
	next, end int64
}

func (b *Broker) newProducerID() (int64, error) {
	p := &b.pids
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		var first int64
		b.meta.View(func(s *eventlog.State) { first = s.NextProducerID })
		if _, err := b.appendMeta(&eventlog.ProducerIdsAllocated{BrokerID: b.cfg.NodeID, First: first, Count: producerBlock}); err != nil {
			return 0, err
		}
		p.next, p.end = first, first+producerBlock
	}
	p.next++
	return p.next - 1, nil
}
