package kafka

import (
	"math"
	"slices"
	"sync"
	"time"

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

// DefaultProducerIDExpiration is how long a producer's state is kept after
// its last write (Kafka's producer.id.expiration.ms: a day).
const DefaultProducerIDExpiration = 24 * time.Hour

// producers is one partition's idempotent-producer state: for each
// producer id, its epoch and its last batches' sequence ranges. Every
// client's producer gets an id of its own, so the state of producers that
// stopped writing expires (expire), as in Kafka; without that it grew with
// every client that ever wrote to the partition.
type producers struct {
	mu   sync.Mutex
	byID map[int64]*producerEntry
	txnState
}

type producerEntry struct {
	epoch    int16
	recent   []seqRange // oldest first, at most recentBatches
	lastSeen int64      // unix ms of the last write
	// awaiting: a batch of the producer was dropped by a failed sync (its
	// sequence in awaitSeq); the producer's later batches are refused
	// (KAFKA_STORAGE_ERROR, which it retries) until that one is written
	// again, so that they do not go before it.
	awaiting bool
	awaitSeq int32
}

type seqRange struct {
	first, last int32
	base, end   int64 // the batch's offsets: [base, end)
	// a is the batch's append, which a retry of it waits for: the retry
	// is answered as the batch's own request is, durable or failed. Nil
	// for a batch found in the log at start-up.
	a *segment.Appended
}

func newProducers() *producers {
	ps := &producers{byID: map[int64]*producerEntry{}}
	ps.init()
	return ps
}

// record notes a batch appended at base (a its append; nil for one found
// at start-up), written at seen (unix ms).
func (ps *producers) record(h *segment.BatchHeader, base, seen int64, a *segment.Appended) {
	e := ps.byID[h.ProducerID]
	if e == nil || h.ProducerEpoch != e.epoch {
		e = &producerEntry{epoch: h.ProducerEpoch}
		ps.byID[h.ProducerID] = e
	}
	e.lastSeen = max(e.lastSeen, seen)
	e.awaiting = false
	e.recent = append(e.recent, seqRange{first: h.BaseSequence, last: lastSeq(h), base: base, end: base + int64(h.LastOffsetDelta) + 1, a: a})
	if len(e.recent) > recentBatches {
		e.recent = e.recent[len(e.recent)-recentBatches:]
	}
}

func lastSeq(h *segment.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// check decides what to do with an idempotent batch: append it (code 0,
// dup nil), answer it as the batch it repeats (dup), or refuse it with an
// error code.
func (ps *producers) check(h *segment.BatchHeader) (dup *seqRange, code int16) {
	e := ps.byID[h.ProducerID]
	switch {
	case e == nil:
		// No state: a new producer, or one whose state expired or whose
		// batches retention deleted. Kafka accepts any sequence then.
		return nil, 0
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber.Code
		}
		return nil, 0
	case h.ProducerEpoch < e.epoch:
		return nil, kerr.InvalidProducerEpoch.Code
	}
	if i := e.find(h); i >= 0 {
		r := e.recent[i]
		return &r, 0
	}
	if e.awaiting {
		if h.BaseSequence != e.awaitSeq {
			return nil, kerr.KafkaStorageError.Code
		}
		return nil, 0 // the lost batch again, after those kept
	}
	if len(e.recent) == 0 {
		// The epoch came with a transaction marker: its first batch.
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber.Code
		}
		return nil, 0
	}
	if last := e.recent[len(e.recent)-1].last; h.BaseSequence != int32((int64(last)+1)%(math.MaxInt32+1)) {
		return nil, kerr.OutOfOrderSequenceNumber.Code
	}
	return nil, 0
}

// marker notes a transaction marker of h's producer appended at offset:
// it ends the producer's transaction, and a newer epoch (a coordinator
// that fenced the producer) becomes the producer's.
func (ps *producers) marker(h *segment.BatchHeader, offset int64, commit bool, seen int64) {
	if e := ps.byID[h.ProducerID]; e == nil || h.ProducerEpoch > e.epoch {
		ps.byID[h.ProducerID] = &producerEntry{epoch: h.ProducerEpoch, lastSeen: seen}
	}
	ps.end(h.ProducerID, offset, commit)
}

// lost cuts a producer's state back to before its batch h, which a failed
// sync dropped (with every write not yet durable), and has the producer's
// later batches refused until h is written again: appended meanwhile, they
// would go before it. A batch the state no longer knows (an earlier one
// was lost, and the state cut back before it) leaves the state as it is;
// one of a producer whose state went meanwhile is ignored.
func (ps *producers) lost(h *segment.BatchHeader) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	e := ps.byID[h.ProducerID]
	if e == nil || e.epoch != h.ProducerEpoch {
		return
	}
	if i := e.find(h); i >= 0 {
		e.recent = e.recent[:i]
		e.awaiting, e.awaitSeq = true, h.BaseSequence
		return
	}
	if !e.awaiting {
		// Older than the batches kept: nothing tells what follows it.
		delete(ps.byID, h.ProducerID)
	}
}

// find returns the index in recent of the batch h repeats, or -1.
func (e *producerEntry) find(h *segment.BatchHeader) int {
	return slices.IndexFunc(e.recent, func(r seqRange) bool { return r.first == h.BaseSequence && r.last == lastSeq(h) })
}

// lastEnd is where the producer of h's last batch known here ended: the
// log must still reach it for h to follow (0 when none is known).
func (ps *producers) lastEnd(h *segment.BatchHeader) int64 {
	if e := ps.byID[h.ProducerID]; e != nil && e.epoch == h.ProducerEpoch && len(e.recent) > 0 {
		return e.recent[len(e.recent)-1].end
	}
	return 0
}

// expire drops the state of producers that have not written since
// before cutoff (unix ms), and returns how many went.
func (ps *producers) expire(cutoff int64) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for id, e := range ps.byID {
		if e.lastSeen < cutoff {
			delete(ps.byID, id)
			n++
		}
	}
	for id := range ps.markers {
		if _, open := ps.ongoing[id]; !open && ps.byID[id] == nil {
			delete(ps.markers, id)
		}
	}
	return n
}

// loadProducers rebuilds a partition's producer state from its batches'
// headers; a batch counts as written at its max timestamp (as in Kafka;
// now if it has none), and producers older than expiration are left out.
// Sealed segments whose batches all are that old are not read, so that
// the rebuild reads the last expiration's worth of the log, not all of it.
// (A producer with batches on both sides of that line keeps only the
// later ones: a retry of a batch over a day old is not recognised.) Open
// transactions and the aborts in that window are rebuilt too (a
// transaction lasts at most the coordinator's maximum timeout, which
// --transaction-max-timeout keeps within the expiration).
func loadProducers(l *segment.Log, expiration time.Duration) (*producers, error) {
	ps := newProducers()
	now := time.Now().UnixMilli()
	cutoff := now - expiration.Milliseconds()
	err := l.Headers(cutoff, func(h *segment.BatchHeader, batch []byte) error {
		if h.ProducerID < 0 {
			return nil
		}
		seen := now
		if h.MaxTimestamp > 0 {
			seen = min(h.MaxTimestamp, now)
		}
		if h.Control() {
			if typ, ok := segment.ControlType(batch); ok && (typ == segment.ControlCommit || typ == segment.ControlAbort) {
				ps.marker(h, h.BaseOffset, typ == segment.ControlCommit, seen)
			}
			return nil
		}
		ps.record(h, h.BaseOffset, seen, nil)
		if h.Transactional() {
			ps.begin(h.ProducerID, h.BaseOffset)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ps.expire(cutoff)
	return ps, nil
}

// expireProducers drops, in every open partition, the state of producers
// idle for longer than the producer id expiration.
func (b *Broker) expireProducers(now time.Time) {
	cutoff := now.Add(-b.producerExpiration()).UnixMilli()
	b.mu.Lock()
	parts := make([]*partition, 0, len(b.parts))
	for _, p := range b.parts {
		parts = append(parts, p)
	}
	b.mu.Unlock()
	n := 0
	for _, p := range parts {
		if p.producers != nil {
			n += p.producers.expire(cutoff)
		}
	}
	if n > 0 {
		b.log.Debug("expired idle producers' state", "producers", n)
	}
}

func (b *Broker) producerExpiration() time.Duration {
	if b.cfg.ProducerIDExpiration > 0 {
		return b.cfg.ProducerIDExpiration
	}
	return DefaultProducerIDExpiration
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
		b.viewLatest(func(s *eventlog.State) { first = s.NextProducerID })
		if err := b.appendMeta(nil, &eventlog.ProducerIdsAllocated{BrokerID: b.cfg.NodeID, First: first, Count: producerBlock}); err != nil {
			return 0, err
		}
		p.next, p.end = first, first+producerBlock
	}
	p.next++
	return p.next - 1, nil
}
