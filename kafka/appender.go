package kafka

import (
	"math"
	"sync"

	"github.com/chronik-stream/chronik/segment"
)

// appender puts one partition's produced batches into its log in the order
// they were submitted, without making producers queue on a lock. Each
// request adds its batch to the queue; the first to find nobody appending
// appends everything queued, including what others add meanwhile, and the
// rest go on at once (flat combining). With many producers on one
// partition, a lock held across the append (a pwrite) made them a convoy:
// Go's mutex hands itself to waiters in turn once they have waited a
// millisecond, so each append cost a goroutine wake-up and the CPU idled
// between them (128 single-record producers used 1.6 of 2 cores).
type appender struct {
	mu    sync.Mutex
	queue []*appendReq
	spare []*appendReq // the last drained queue, reused
	busy  bool         // a goroutine is draining the queue
}

// appendReq is one produced batch on its way into the log.
type appendReq struct {
	records []byte
	acks    int16
	marker  bool          // a transaction marker of the coordinator's, not a client's batch
	txnOK   bool          // the coordinator, on another node, has the batch's transaction open with the partition
	txnSeen uint32        // with txnOK: the producer's markers in the partition when that was asked
	done    chan struct{} // closed once the fields below are set

	a    *segment.Appended // nil with code != 0 or for a duplicate
	dup  *seqRange         // a duplicate: the batch it repeats
	code int16
}

// submit queues r and, unless another goroutine is appending, appends
// the queued batches of part before returning. r.done is closed once r is
// appended (or refused), by whichever goroutine appended it.
func (ap *appender) submit(part *partition, r *appendReq) {
	r.done = make(chan struct{})
	ap.mu.Lock()
	ap.queue = append(ap.queue, r)
	if ap.busy {
		ap.mu.Unlock()
		return
	}
	ap.busy = true
	ap.mu.Unlock()
	ap.drain(part, maxCombined)
}

// maxCombined bounds what one request's goroutine (a connection's reader)
// appends for others before it hands the rest of the queue to a goroutine
// of its own and goes back to its connection.
const maxCombined = 256

// drain appends queued batches until the queue is empty, or hands the
// queue on after limit batches. The caller set busy.
func (ap *appender) drain(part *partition, limit int) {
	appended := 0
	ap.mu.Lock()
	for len(ap.queue) > 0 {
		if appended >= limit {
			ap.mu.Unlock()
			go ap.drain(part, math.MaxInt)
			return
		}
		batch := ap.queue
		ap.queue = ap.spare[:0]
		ap.mu.Unlock()
		for _, r := range batch {
			r.a, r.dup, r.code = appendBatch(part, r)
			close(r.done)
		}
		appended += len(batch)
		clear(batch)
		ap.mu.Lock()
		ap.spare = batch
	}
	ap.busy = false
	ap.mu.Unlock()
}
