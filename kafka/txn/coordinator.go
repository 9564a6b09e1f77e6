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
		switch {
		case errors.Is(err, segment.ErrQueueFull):
			return kerr.RequestTimedOut.Code
		case errors.Is(err, segment.ErrBatchTooLarge):
			// More partitions than one record of the state partition
			// holds: not retriable, as in Kafka (the client aborts).
			return kerr.UnknownServerError.Code
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
