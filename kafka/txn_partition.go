package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
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
	ongoing   map[int64]int64 // producer id -> first offset of its open transaction
	firstOpen atomic.Int64    // the lowest of those, math.MaxInt64 if none
	aborted   atomic.Pointer[[]abortedTxn]
	fileMu    sync.Mutex // orders writes of the aborted-txns file
}

func (t *txnState) init() {
	t.ongoing = map[int64]int64{}
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

// end closes pid's transaction at its marker's offset; an aborted one
// with batches here joins the aborted list.
func (t *txnState) end(pid, marker int64, commit bool) {
	first, ok := t.ongoing[pid]
	if !ok {
		return // a marker for a transaction that wrote nothing here
	}
	delete(t.ongoing, pid)
	low := int64(math.MaxInt64)
	for _, f := range t.ongoing {
		low = min(low, f)
	}
	t.firstOpen.Store(low)
	if !commit {
		t.addAborted(abortedTxn{pid: pid, first: first, last: marker})
	}
}

// addAborted adds a to the aborted list (kept by last offset), unless it
// is there.
func (t *txnState) addAborted(a abortedTxn) bool {
	old := *t.aborted.Load()
	i, found := slices.BinarySearchFunc(old, a.last, func(x abortedTxn, last int64) int { return cmpInt(x.last, last) })
	if found {
		return false
	}
	list := slices.Insert(slices.Clone(old), i, a)
	t.aborted.Store(&list)
	return true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stableOffset is the last stable offset: the high watermark, or the first
// offset of an open transaction below it.
func (t *txnState) stableOffset(hw int64) int64 { return min(hw, t.firstOpen.Load()) }

// abortedIn returns the aborted transactions a read of [from, to] needs to
// know: those ending at or after from that began at or before to.
func (t *txnState) abortedIn(from, to int64) []abortedTxn {
	list := *t.aborted.Load()
	i, _ := slices.BinarySearchFunc(list, from, func(x abortedTxn, off int64) int { return cmpInt(x.last, off) })
	var out []abortedTxn
	for _, a := range list[i:] {
		if a.first <= to {
			out = append(out, a)
		}
	}
	return out
}

// The aborted-txns file of a partition directory keeps the aborted
// transactions for read_committed reads of any age (the producer state is
// rebuilt from the last producer expiration's worth of the log only). It
// is replaced whole after an abort marker is durable; one whose marker a
// crash lost is dropped at open (its last offset is past the log's end),
// and one a crash kept out of the file is found again by the rebuild,
// which reads the markers of that window.
//
// Format (part of the on-disk format):
//
//	magic "CKAT" | count uint32 | count x (producer id, first, last int64) | CRC-32C of all before uint32
const (
	abortedTxnsFile  = "aborted-txns"
	abortedTxnsMagic = "CKAT"
	abortedEntrySize = 24
)

func encodeAborted(list []abortedTxn) []byte {
	b := make([]byte, 8, 8+len(list)*abortedEntrySize+4)
	copy(b, abortedTxnsMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(len(list)))
	for _, a := range list {
		b = binary.BigEndian.AppendUint64(b, uint64(a.pid))
		b = binary.BigEndian.AppendUint64(b, uint64(a.first))
		b = binary.BigEndian.AppendUint64(b, uint64(a.last))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// decodeAborted returns the list in b, if b is a whole, valid file.
func decodeAborted(b []byte) ([]abortedTxn, bool) {
	if len(b) < 12 || string(b[:4]) != abortedTxnsMagic {
		return nil, false
	}
	n := binary.BigEndian.Uint32(b[4:])
	if uint64(len(b)) != 12+uint64(n)*abortedEntrySize || binary.BigEndian.Uint32(b[len(b)-4:]) != crc32.Checksum(b[:len(b)-4], crc32c) {
		return nil, false
	}
	list := make([]abortedTxn, n)
	for i := range list {
		e := b[8+i*abortedEntrySize:]
		list[i] = abortedTxn{pid: int64(binary.BigEndian.Uint64(e)), first: int64(binary.BigEndian.Uint64(e[8:])), last: int64(binary.BigEndian.Uint64(e[16:]))}
		if list[i].first > list[i].last || i > 0 && list[i].last <= list[i-1].last {
			return nil, false
		}
	}
	return list, true
}

// loadAborted adds a partition's aborted-txns file to the aborted list
// the rebuild found, keeping the transactions whose marker is in the log,
// and writes the file again if the rebuild found one it lacked (a crash
// after the marker) or it holds one whose marker is gone. A damaged file
// is an error: serving aborted records to read_committed consumers would
// be wrong.
func (b *Broker) loadAborted(part *partition) error {
	path := b.partitionPath(part.topic, part.p, abortedTxnsFile)
	data, err := segment.ReadFile(b.store.FS(), path, 64<<20)
	var list []abortedTxn
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		var ok bool
		if list, ok = decodeAborted(data); !ok {
			return fmt.Errorf("%s is damaged (%d bytes): remove it to serve the partition, and aborted transactions in it to read_committed consumers", path, len(data))
		}
	}
	ps, end := part.producers, part.log.EndOffset()
	kept := 0
	for _, a := range list {
		if a.last < end {
			ps.addAborted(a)
			kept++
		}
	}
	if kept == len(list) && len(*ps.aborted.Load()) == kept {
		return nil
	}
	return b.saveAborted(part)
}

// saveAborted replaces a partition's aborted-txns file with its aborted
// list, leaving out what lies below the log start.
func (b *Broker) saveAborted(part *partition) error {
	ps := part.producers
	ps.fileMu.Lock()
	defer ps.fileMu.Unlock()
	start := part.log.StartOffset()
	var keep []abortedTxn
	for _, a := range *ps.aborted.Load() {
		if a.last >= start {
			keep = append(keep, a)
		}
	}
	path := b.partitionPath(part.topic, part.p, abortedTxnsFile)
	return segment.ReplaceFile(b.store.FS(), path, path+".tmp", encodeAborted(keep))
}

// cutAtStable drops from data (whole batches read from a log) the batches
// at or past the last stable offset, for a read_committed fetch.
func cutAtStable(data []byte, lso int64) []byte {
	pos := 0
	for pos < len(data) {
		h, err := segment.ParseHeader(data[pos:])
		if err != nil || h.BaseOffset >= lso || pos+h.Size() > len(data) {
			break
		}
		pos += h.Size()
	}
	return data[:pos]
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
	return b.saveAborted(part)
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
	slices.SortFunc(out, func(x, y activeProducer) int { return cmpInt(x.pid, y.pid) })
	return out
}
