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
	// A remote coordinator's yes counts only if no marker of the producer
	// came in since it was asked.
	if err := b.writeMarker("t", 0, 5, 0, false); err != nil {
		t.Fatal(err)
	}
	for _, seen := range []uint32{0, 1} {
		r := &appendReq{records: segmenttest.Batch{Idempotent: true, Transactional: true, ProducerID: 5,
			Records: []segmenttest.Record{{Value: []byte("v")}}}.Build(), acks: -1, txnOK: true, txnSeen: seen}
		part.appender.submit(part, r)
		<-r.done
		if want := map[uint32]int16{0: kerr.InvalidTxnState.Code, 1: 0}[seen]; r.code != want {
			t.Fatalf("a remotely checked batch asked before %d marker(s), 1 since: code %d, want %d", seen, r.code, want)
		}
		if r.code == 0 {
			r.a.Wait()
		}
	}
	if err := b.writeMarker("t", 0, 5, 0, false); err != nil { // ends that transaction
		t.Fatal(err)
	}
	if want = *part.producers.aborted.Load(); len(want) != 2 || want[1].pid != 5 {
		t.Fatalf("aborted after producer 5's abort: %v", want)
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
	cut, last := cutAtStable(data, open3, 0)
	h, _ := segment.ParseHeader(cut[len(cut)-batchSizeAt(cut, open3-1):])
	if h.LastOffset() != open3-1 || last != open3-1 || !bytes.HasPrefix(data, cut) {
		t.Fatalf("read_committed data ends at %d (last %d), want %d", h.LastOffset(), last, open3-1)
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

// TestAbortedFile: aborts are appended to the file one by one; a torn
// last append is dropped (the rebuild finds that abort again in the log)
// and the file rewritten; damage before the last entry keeps the
// partition from opening (serving aborted records as committed would be
// wrong), with an error that names the file; once most aborts lie below
// the log start the file is rewritten without them.
func TestAbortedFile(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	b := memBroker(t, fsys)
	if _, err := b.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	part, _ := b.openPartition("t", 0)
	part.verifyTxn = func(int64, int16, string, int32) bool { return true }
	abort := func(pid int64) {
		t.Helper()
		r := &appendReq{records: segmenttest.Batch{Idempotent: true, Transactional: true, ProducerID: pid,
			Records: []segmenttest.Record{{Value: []byte("v")}}}.Build(), acks: -1}
		part.appender.submit(part, r)
		if <-r.done; r.code != 0 || r.a.Wait() != nil {
			t.Fatalf("produce: %d", r.code)
		}
		if err := b.writeMarker("t", 0, pid, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	path := b.partitionPath("t", 0, abortedTxnsFile)
	read := func() []byte {
		t.Helper()
		data, err := segment.ReadFile(fsys, path, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for pid := range int64(3) {
		abort(pid)
	}
	data := read()
	want := []abortedTxn{{0, 0, 1}, {1, 2, 3}, {2, 4, 5}}
	if got, valid, ok := decodeAborted(data); !ok || valid != len(data) || !slices.Equal(got, want) || len(data) != abortedHeader+3*abortedEntrySize {
		t.Fatalf("file holds %v (ok %v), want %v appended", got, ok, want)
	}
	reload := func() (*partition, error) {
		p := &partition{log: part.log, producers: newProducers(), topic: "t", p: 0}
		return p, b.loadAborted(p)
	}

	// A torn last append: the rest is read, the file made whole again.
	torn := slices.Clone(data[:len(data)-5])
	if err := segment.ReplaceFile(fsys, path, path+".tmp", torn); err != nil {
		t.Fatal(err)
	}
	p, err := reload()
	if err != nil {
		t.Fatal(err)
	}
	if got := *p.producers.aborted.Load(); !slices.Equal(got, want[:2]) {
		t.Fatalf("after a torn append: %v", got)
	}
	if got, valid, _ := decodeAborted(read()); valid != len(read()) || !slices.Equal(got, want[:2]) {
		t.Fatalf("the file after a torn append was not made whole: %v", got)
	}

	// Damage before the last entry.
	damaged := slices.Clone(data)
	damaged[abortedHeader+3] ^= 1
	if err := segment.ReplaceFile(fsys, path, path+".tmp", damaged); err != nil {
		t.Fatal(err)
	}
	if _, err := reload(); err == nil || !bytes.Contains([]byte(err.Error()), []byte(abortedTxnsFile)) {
		t.Fatalf("damaged file: %v", err)
	}

	// Aborts below the log start go when they are most of the file.
	if err := segment.ReplaceFile(fsys, path, path+".tmp", data); err != nil {
		t.Fatal(err)
	}
	if _, err := part.log.DeleteRecordsBefore(6); err != nil {
		t.Fatal(err)
	}
	abort(3)
	if got, _, _ := decodeAborted(read()); !slices.Equal(got, []abortedTxn{{3, 6, 7}}) {
		t.Fatalf("after most aborts fell below the log start, the file holds %v", got)
	}
	if got := *part.producers.aborted.Load(); !slices.Equal(got, []abortedTxn{{3, 6, 7}}) {
		t.Fatalf("after most aborts fell below the log start, memory holds %v", got)
	}
}

// FuzzAbortedFile: any bytes decode to aborts whose encoding is the valid
// prefix, or are refused; never a panic.
func FuzzAbortedFile(f *testing.F) {
	f.Add(encodeAborted(nil))
	f.Add(encodeAborted([]abortedTxn{{1, 0, 4}, {2, 3, 9}}))
	f.Add(encodeAborted([]abortedTxn{{1, 0, 4}, {2, 3, 9}})[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		list, valid, ok := decodeAborted(b)
		if !ok {
			return
		}
		if !bytes.Equal(encodeAborted(list), b[:valid]) {
			t.Fatalf("%x decoded to %v, which encodes differently", b, list)
		}
	})
}
