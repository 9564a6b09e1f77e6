package kafka

import (
	"bytes"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestPartitionTransactions: transactional batches hold the last stable
// offset at their transaction's first batch until its marker; an abort is
// recorded with its range; read_committed reads stop at the stable offset;
// the state is the same when rebuilt from the log and the aborted-txns
// file, and the file alone keeps an abort whose batches the rebuild does
// not read.
func TestPartitionTransactions(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	part, code := b.openPartition("t", 0)
	if code != 0 {
		t.Fatalf("open: %d", code)
	}
	// The coordinator's check, as if every transaction added the partition.
	part.verifyTxn = func(int64, int16, string, int32) bool { return true }
	seqs := map[int64]int32{}
	produce := func(pid int64, txn bool) int64 {
		t.Helper()
		batch := segmenttest.Batch{Idempotent: true, Transactional: txn, ProducerID: pid, BaseSequence: seqs[pid],
			Records: []segmenttest.Record{{Value: []byte("v")}}}.Build()
		seqs[pid]++
		r := &appendReq{records: batch, acks: -1}
		part.appender.submit(part, r)
		<-r.done
		if r.code != 0 {
			t.Fatalf("produce: code %d", r.code)
		}
		if err := r.a.Wait(); err != nil {
			t.Fatal(err)
		}
		return r.a.Base
	}
	lso := func() int64 { return part.producers.stableOffset(part.log.HighWatermark()) }

	produce(9, false)          // 0: not transactional
	first1 := produce(1, true) // 1
	produce(2, true)           // 2
	produce(1, true)           // 3
	if got := lso(); got != first1 {
		t.Fatalf("LSO %d with two open transactions, want %d", got, first1)
	}
	if err := b.writeMarker("t", 0, 1, 0, false); err != nil { // 4: abort of producer 1
		t.Fatal(err)
	}
	if got := lso(); got != 2 {
		t.Fatalf("LSO %d after producer 1's abort, want 2 (producer 2's first)", got)
	}
	if err := b.writeMarker("t", 0, 2, 0, true); err != nil { // 5: commit of producer 2
		t.Fatal(err)
	}
	if got, hw := lso(), part.log.HighWatermark(); got != hw || hw != 6 {
		t.Fatalf("LSO %d, HW %d after both markers, want 6", got, hw)
	}
	want := []abortedTxn{{pid: 1, first: 1, last: 4}}
	if got := *part.producers.aborted.Load(); !slices.Equal(got, want) {
		t.Fatalf("aborted %v, want %v", got, want)
	}
	if got := part.producers.abortedIn(5, 5); len(got) != 0 {
		t.Fatalf("a read from 5 is told of %v", got)
	}
	if got := part.producers.abortedIn(0, 1); !slices.Equal(got, want) {
		t.Fatalf("a read of [0, 1] is told of %v", got)
	}

	// A transaction's first batch here that the coordinator does not know
	// is refused; a later one of a transaction open here needs no check.
	part.verifyTxn = func(pid int64, _ int16, _ string, _ int32) bool { return pid != 5 }
	late := &appendReq{records: segmenttest.Batch{Idempotent: true, Transactional: true, ProducerID: 5,
		Records: []segmenttest.Record{{Value: []byte("v")}}}.Build(), acks: -1}
	part.appender.submit(part, late)
	if <-late.done; late.code != kerr.InvalidTxnState.Code {
		t.Fatalf("an unverified transactional batch: code %d, want INVALID_TXN_STATE", late.code)
	}
	part.verifyTxn = func(int64, int16, string, int32) bool { return true }

	// A client may not write a control batch.
	r := &appendReq{records: segment.BuildMarker(1, 0, true, 0, 1), acks: -1}
	part.appender.submit(part, r)
	if <-r.done; r.code == 0 {
		t.Fatal("a client's control batch was appended")
	}

	// An open transaction again, then the state rebuilt.
	open3 := produce(3, true)
	rebuild := func() *partition {
		t.Helper()
		b.mu.Lock()
		delete(b.parts, segment.PartitionDir("t", 0))
		b.mu.Unlock()
		p, code := b.openPartition("t", 0)
		if code != 0 {
			t.Fatalf("reopen: %d", code)
		}
		return p
	}
	part = rebuild()
	part.verifyTxn = func(int64, int16, string, int32) bool { return true }
	if got := lso(); got != open3 {
		t.Fatalf("rebuilt LSO %d, want %d", got, open3)
	}
	if got := *part.producers.aborted.Load(); !slices.Equal(got, want) {
		t.Fatalf("rebuilt aborted %v, want %v", got, want)
	}
	// The file alone: a rebuild that reads none of the log (expiration 0
	// leaves every sealed segment out; roll first so there is one).
	if _, err := part.log.Roll(); err != nil {
		t.Fatal(err)
	}
	ps := newProducers()
	other := &partition{log: part.log, producers: ps, topic: "t", p: 0}
	if err := b.loadAborted(other); err != nil {
		t.Fatal(err)
	}
	if got := *ps.aborted.Load(); !slices.Equal(got, want) {
		t.Fatalf("aborted from the file %v, want %v", got, want)
	}

	// read_committed data stops at the stable offset.
	data, err := part.log.Read(0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	cut := cutAtStable(data, open3)
	h, _ := segment.ParseHeader(cut[len(cut)-batchSizeAt(cut, open3-1):])
	if h.LastOffset() != open3-1 || !bytes.HasPrefix(data, cut) {
		t.Fatalf("read_committed data ends at %d, want %d", h.LastOffset(), open3-1)
	}
}

// batchSizeAt returns the size of the batch of data holding offset.
func batchSizeAt(data []byte, offset int64) int {
	for pos := 0; pos < len(data); {
		h, err := segment.ParseHeader(data[pos:])
		if err != nil {
			return 0
		}
		if h.LastOffset() >= offset {
			return h.Size()
		}
		pos += h.Size()
	}
	return 0
}

// TestAbortedFileDamaged: a damaged aborted-txns file keeps the partition
// from opening (serving aborted records as committed would be wrong), with
// an error that names the file.
func TestAbortedFileDamaged(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	b := memBroker(t, fsys)
	if _, err := b.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	part, _ := b.openPartition("t", 0)
	path := b.partitionPath("t", 0, abortedTxnsFile)
	data := encodeAborted([]abortedTxn{{1, 0, 1}})
	data[9] ^= 1
	if err := segment.ReplaceFile(fsys, path, path+".tmp", data); err != nil {
		t.Fatal(err)
	}
	err := b.loadAborted(&partition{log: part.log, producers: newProducers(), topic: "t", p: 0})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(abortedTxnsFile)) {
		t.Fatalf("damaged file: %v", err)
	}
}

// FuzzAbortedFile: any bytes decode to a valid list (ordered, ranges the
// right way round) that encodes to the same bytes, or are refused.
func FuzzAbortedFile(f *testing.F) {
	f.Add(encodeAborted(nil))
	f.Add(encodeAborted([]abortedTxn{{1, 0, 4}, {2, 3, 9}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		list, ok := decodeAborted(b)
		if !ok {
			return
		}
		if !bytes.Equal(encodeAborted(list), b) {
			t.Fatalf("%x decoded to %v, which encodes differently", b, list)
		}
	})
}
