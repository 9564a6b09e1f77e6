// Package txn is the transaction coordinator: for each transactional id,
// its producer id and epoch, the partitions its open transaction wrote to,
// and the two-phase end of that transaction (the decision durable first,
// then a marker in every partition, then the completion). Its state is a
// log of Kafka's own transaction-state records in an internal partition,
// replayed at start; a transaction a crash left between the decision and
// its completion is completed then. In a cluster one broker's coordinator
// serves (package kafka decides which, and carries markers to other
// brokers' partitions).
package txn

import (
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/segment"
)

// Topic is the internal partition (0) that holds the transactions' state.
const Topic = "__transaction_state"

// DefaultMaxTimeout is the longest transaction timeout a producer may ask
// for (Kafka's transaction.max.timeout.ms).
const DefaultMaxTimeout = 15 * time.Minute

// Transaction states (Kafka's).
const (
	Empty          = kmsg.TransactionState(0)
	Ongoing        = kmsg.TransactionState(1)
	PrepareCommit  = kmsg.TransactionState(2)
	PrepareAbort   = kmsg.TransactionState(3)
	CompleteCommit = kmsg.TransactionState(4)
	CompleteAbort  = kmsg.TransactionState(5)
)

// Config is what the coordinator needs from its broker.
type Config struct {
	// MaxTimeout bounds the timeouts producers ask for; 0 is
	// DefaultMaxTimeout.
	MaxTimeout time.Duration
	// NewProducerID hands out a producer id never given before.
	NewProducerID func() (int64, error)
	// WriteMarker ends a producer's transaction in a partition (a data
	// partition, or the offsets partition for offsets committed in it),
	// durably, before it returns.
	WriteMarker func(topic string, p int32, pid int64, epoch int16, commit bool) error
	// PartitionExists says whether a transaction may add a partition.
	PartitionExists func(topic string, p int32) bool
	// OffsetsTopic is the partition (0 of it) that AddOffsetsToTxn adds.
	OffsetsTopic string
	Logger       *slog.Logger
	// CompactBytes is the size from which the state log is compacted;
	// 0 is DefaultCompactBytes.
	CompactBytes int64
}

// Coordinator coordinates the transactions of a broker.
type Coordinator struct {
	cfg Config
	log *segment.Log
	lg  *slog.Logger

	mu     sync.Mutex // guards txns and closed, and orders appends to log
	txns   map[string]*txn
	closed bool

	// byPID finds a producer's transactional id for Verify, which the
	// produce path calls: under a lock of its own, never held across I/O
	// (mu is, while the state partition is compacted).
	pidMu sync.RWMutex
	byPID map[int64]*txn

	compactor statelog.Compactor

	// ended counts completed transactions: committed, aborted by their
	// producer, aborted by the coordinator (timeout, new incarnation).
	ended [3]atomic.Int64
}

// txn is one transactional id; mu is held across a change of its meta and
// the write that makes it durable: one change at a time per transactional
// id, in the log's order.
type txn struct {
	mu   sync.Mutex
	id   string
	gone bool // expired: removed from the coordinator
	meta
	// snap is meta as last made durable, for readers that must not wait
	// for mu (Verify, the admin APIs); its maps are never changed.
	snap atomic.Pointer[meta]
}

// meta is a transactional id's state, as its records store it.
type meta struct {
	pid       int64 // -1 until the first InitProducerId
	epoch     int16
	lastEpoch int16 // the epoch before the coordinator bumped it to abort (not stored)
	timeout   time.Duration
	status    kmsg.TransactionState
	parts     map[string]map[int32]bool
	started   time.Time
	updated   time.Time
}

// Open replays the state partition l and returns its coordinator.
// Transactions left between their decision and its completion are
// completed by Recover.
func Open(l *segment.Log, cfg Config) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	c := &Coordinator{cfg: cfg, log: l, lg: cfg.Logger, txns: map[string]*txn{}, byPID: map[int64]*txn{}}
	c.compactor = statelog.Compactor{Log: l, MinBytes: cfg.CompactBytes}
	if c.compactor.MinBytes <= 0 {
		c.compactor.MinBytes = DefaultCompactBytes
	}
	if _, err := c.replayFrom(l.StartOffset()); err != nil {
		return nil, err
	}
	for _, t := range c.txns {
		c.published(t)
	}
	return c, nil
}

// Log is the state partition.
func (c *Coordinator) Log() *segment.Log { return c.log }

// Close refuses further requests (NOT_COORDINATOR).
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// lock returns the transactional id's entry, created if create, with its
// mu held.
func (c *Coordinator) lock(id string, create bool) (*txn, int16) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, kerr.NotCoordinator.Code
		}
		t := c.txns[id]
		if t == nil && create {
			t = &txn{id: id, meta: meta{pid: -1, parts: map[string]map[int32]bool{}}}
			c.txns[id] = t
		}
		c.mu.Unlock()
		if t == nil {
			return nil, 0
		}
		t.mu.Lock()
		if !t.gone {
			return t, 0
		}
		t.mu.Unlock() // expired meanwhile: look again
	}
}

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

// commit writes next as t's state and, once durable, makes it t's. The
// caller holds t.mu.
func (c *Coordinator) commit(t *txn, next meta) int16 {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return kerr.NotCoordinator.Code
	}
	a, err := c.log.Append(buildBatch([]segment.Record{stateRecord(t.id, &next)}, next.updated), 0, -1)
	c.mu.Unlock()
	if err == nil {
		err = a.Wait()
	}
	if err != nil {
		c.lg.Error("cannot store a transaction's state", "transactional_id", t.id, "error", err)
		if errors.Is(err, segment.ErrQueueFull) {
			return kerr.RequestTimedOut.Code
		}
		return kerr.CoordinatorNotAvailable.Code
	}
	t.meta = next
	c.published(t)
	return 0
}

// published makes t's meta what Verify and the admin APIs see, and
// indexes t by its producer id. A change never modifies the maps of the
// meta it replaces: each builds its own.
func (c *Coordinator) published(t *txn) {
	snap := t.meta
	t.snap.Store(&snap)
	c.pidMu.Lock()
	c.byPID[t.pid] = t
	c.pidMu.Unlock()
}

// Verify reports whether a transactional batch of producer pid with epoch
// may open the producer's transaction in a partition: the transaction is
// open, with that epoch, and added the partition (AddPartitionsToTxn).
// Without it, a batch that arrives late (a retry after its transaction
// ended) would open a transaction no marker ever ends, holding
// read_committed consumers back for good (the hanging transactions of
// KIP-890). It takes no lock a transaction's end holds: the end waits for
// its markers, which queue behind produced batches.
func (c *Coordinator) Verify(pid int64, epoch int16, topic string, p int32) bool {
	c.pidMu.RLock()
	t := c.byPID[pid]
	c.pidMu.RUnlock()
	if t == nil {
		return false
	}
	m := t.snap.Load()
	return m != nil && m.status == Ongoing && m.pid == pid && m.epoch == epoch && m.parts[topic][p]
}

// Recover completes the transactions a crash left between their decision
// and completion, and aborts those open for longer than their timeout.
// The broker calls it once it serves partitions, and then every few
// seconds.
func (c *Coordinator) Recover(now time.Time) {
	c.mu.Lock()
	var todo []*txn
	for _, t := range c.txns {
		todo = append(todo, t)
	}
	c.mu.Unlock()
	for _, t := range todo {
		if !t.mu.TryLock() {
			continue // busy with a request: looked at next time
		}
		switch {
		case t.status == PrepareCommit || t.status == PrepareAbort:
			c.end(t, t.status == PrepareCommit, false)
		case t.status == Ongoing && now.Sub(t.started) > t.timeout:
			c.lg.Info("aborting a transaction past its timeout", "transactional_id", t.id, "producer_id", t.pid, "timeout", t.timeout)
			c.end(t, false, true)
		}
		t.mu.Unlock()
	}
}
