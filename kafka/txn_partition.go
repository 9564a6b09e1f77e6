package kafka

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/segment"
)

// A partition's transactions: which producers have one open (their first
// batch's offset holds the last stable offset back), and the aborted ones,
// which read_committed consumers skip.

// abortedTxn is a producer's aborted transaction in one partition: its
// batches from first up to the abort marker at last.
type abortedTxn struct{ pid, first, last int64 }

// txnState is the transactional part of a partition's producer state.
// ongoing is guarded by producers.mu; firstOpen and aborted are read
// without it (by fetches).
type txnState struct {
	ongoing   map[int64]int64  // producer id -> first offset of its open transaction
	markers   map[int64]uint32 // producer id -> markers appended for it (see remoteTxnCheck)
	firstOpen atomic.Int64     // the lowest of those, math.MaxInt64 if none
	aborted   atomic.Pointer[[]abortedTxn]
	fileMu    sync.Mutex // orders writes of the aborted-txns file
	fileSize  int64      // its valid bytes, under fileMu (0: none written yet)
}

func (t *txnState) init() {
	t.ongoing = map[int64]int64{}
	t.markers = map[int64]uint32{}
	t.firstOpen.Store(math.MaxInt64)
	t.aborted.Store(new([]abortedTxn))
}

// begin notes a transactional batch of pid at base: the first one opens
// its transaction.
func (t *txnState) begin(pid, base int64) {
	if _, ok := t.ongoing[pid]; ok {
		return
	}
	t.ongoing[pid] = base
	if base < t.firstOpen.Load() {
		t.firstOpen.Store(base)
	}
}

// cancel forgets pid's open transaction without a marker: its first
// batch was not written.
func (t *txnState) cancel(pid int64) {
	delete(t.ongoing, pid)
	t.lowerFirstOpen()
}

// rebase moves pid's open transaction's start to base, its first batch's
// offset now that it is known (begin set a lower bound). The stable offset
// only rises: it never passes the batch in between.
func (t *txnState) rebase(pid, base int64) {
	t.ongoing[pid] = base
	t.lowerFirstOpen()
}

// lowerFirstOpen sets firstOpen to the lowest open transaction's start.
func (t *txnState) lowerFirstOpen() {
	low := int64(math.MaxInt64)
	for _, f := range t.ongoing {
		low = min(low, f)
	}
	t.firstOpen.Store(low)
}

// end closes pid's transaction at its marker's offset; an aborted one
// with batches here joins the aborted list.
func (t *txnState) end(pid, marker int64, commit bool) {
	t.markers[pid]++
	first, ok := t.ongoing[pid]
	if !ok {
		return // a marker for a transaction that wrote nothing here
	}
	// The abort is listed before the stable offset passes its batches: a
	// read_committed fetch that reads the stable offset (without the lock)
	// and then the aborted list must find it there.
	if !commit {
		t.addAborted(abortedTxn{pid: pid, first: first, last: marker})
	}
	delete(t.ongoing, pid)
	t.lowerFirstOpen()
}

// addAborted adds a to the aborted list (kept by last offset), unless it
// is there.
func (t *txnState) addAborted(a abortedTxn) {
	old := *t.aborted.Load()
	i, found := slices.BinarySearchFunc(old, a.last, func(x abortedTxn, last int64) int { return cmp.Compare(x.last, last) })
	if found {
		return
	}
	list := slices.Insert(slices.Clone(old), i, a)
	t.aborted.Store(&list)
}

// stableOffset is the last stable offset: the high watermark, or the first
// offset of an open transaction below it.
func (t *txnState) stableOffset(hw int64) int64 { return min(hw, t.firstOpen.Load()) }

// abortedIn returns the aborted transactions a read of [from, to] needs to
// know: those ending at or after from that began at or before to.
func (t *txnState) abortedIn(from, to int64) []abortedTxn {
	list := *t.aborted.Load()
	i, _ := slices.BinarySearchFunc(list, from, func(x abortedTxn, off int64) int { return cmp.Compare(x.last, off) })
	var out []abortedTxn
	for _, a := range list[i:] {
		if a.first <= to {
			out = append(out, a)
		}
	}
	return out
}

// cutAtStable drops from data (whole batches read from a log) the batches
// at or past the last stable offset, for a read_committed fetch, and
// returns the last offset of what is left (before: none left).
func cutAtStable(data []byte, lso, before int64) ([]byte, int64) {
	pos, last := 0, before
	for pos < len(data) {
		h, err := segment.ParseHeader(data[pos:])
		if err != nil || h.BaseOffset >= lso || pos+h.Size() > len(data) {
			break
		}
		pos, last = pos+h.Size(), h.LastOffset()
	}
	return data[:pos], last
}

// writeMarker ends a producer's transaction in a partition this node
// leads: the marker goes in after every batch produced to the partition
// before it, and once it is durable an abort is recorded in the
// partition's aborted-txns file. A partition deleted meanwhile has
// nothing to end.
func (b *Broker) writeMarker(topic string, p int32, pid int64, epoch int16, commit bool) error {
	part, code := b.openPartition(topic, p)
	switch {
	case code == kerr.UnknownTopicOrPartition.Code:
		return nil
	case code != 0:
		return kerr.ErrorForCode(code)
	}
	r := &appendReq{records: segment.BuildMarker(pid, epoch, commit, 0, time.Now().UnixMilli()), acks: -1, marker: true}
	part.appender.submit(part, r)
	<-r.done
	if r.code != 0 {
		return kerr.ErrorForCode(r.code)
	}
	if err := r.a.Wait(); err != nil {
		return err
	}
	if commit {
		return nil
	}
	return b.saveAborted(part, r.a.Base)
}

// activeProducer is a producer's state in a partition as DescribeProducers
// reports it.
type activeProducer struct {
	pid      int64
	epoch    int16
	lastSeq  int32 // -1 with no batch known
	lastSeen int64 // unix ms
	txnStart int64 // first offset of its open transaction, -1 if none
}

// active lists the producers a partition holds state for, by id.
func (ps *producers) active() []activeProducer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]activeProducer, 0, len(ps.byID))
	for pid, e := range ps.byID {
		a := activeProducer{pid: pid, epoch: e.epoch, lastSeq: -1, lastSeen: e.lastSeen, txnStart: -1}
		if len(e.recent) > 0 {
			a.lastSeq = e.recent[len(e.recent)-1].last
		}
		if first, ok := ps.ongoing[pid]; ok {
			a.txnStart = first
		}
		out = append(out, a)
	}
	for pid, first := range ps.ongoing {
		if ps.byID[pid] == nil { // its sequence state expired, its transaction not
			out = append(out, activeProducer{pid: pid, epoch: -1, lastSeq: -1, txnStart: first})
		}
	}
	slices.SortFunc(out, func(x, y activeProducer) int { return cmp.Compare(x.pid, y.pid) })
	return out
}
