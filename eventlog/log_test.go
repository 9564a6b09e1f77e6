package eventlog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

type logEnv struct {
	t     *testing.T
	fs    *segmenttest.MemFS
	store *segment.Store
	log   *Log
	opts  Options
}

// testSegment keeps the in-memory files small.
func testSegment() *segment.Config {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.PreallocateBytes = 64 << 10
	cfg.RetentionMs = -1
	return &cfg
}

func newLogEnv(t *testing.T, opts Options) *logEnv {
	t.Helper()
	if opts.Segment == nil {
		opts.Segment = testSegment()
	}
	e := &logEnv{t: t, fs: segmenttest.NewMemFS(), opts: opts}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func (e *logEnv) open() {
	e.t.Helper()
	st, err := segment.OpenStore("/data", segment.StoreOptions{FS: e.fs, RetentionCheckInterval: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := Open(st, e.opts)
	if err != nil {
		st.Close()
		e.t.Fatal(err)
	}
	e.store, e.log = st, l
}

func (e *logEnv) close() {
	if e.log != nil {
		e.log.Close()
		e.store.Close()
		e.log = nil
	}
}

func (e *logEnv) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

func (e *logEnv) snapshotBytes() string {
	var s string
	e.log.View(func(st *State) { s = string(EncodeSnapshot(st, 0)) })
	return s
}

func (e *logEnv) append(events ...Event) int64 {
	e.t.Helper()
	off, err := e.log.Append(events...)
	if err != nil {
		e.t.Fatal(err)
	}
	return off
}

func createTopic(name string, parts int32) []Event {
	evs := []Event{&TopicCreated{Name: name, TopicID: NewUUID(), PartitionCount: parts, ReplicationFactor: 1}}
	for p := range parts {
		evs = append(evs, &PartitionChanged{Topic: name, Partition: p, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	return evs
}

func TestLogAppendReopen(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1})
	if off := e.append(reg(1, inc1)); off != 0 {
		t.Fatalf("first offset %d", off)
	}
	if off := e.append(createTopic("orders", 3)...); off != 1 {
		t.Fatalf("group offset %d", off)
	}
	// A refused event writes nothing.
	_, err := e.log.Append(&TopicCreated{Name: "orders", TopicID: NewUUID(), PartitionCount: 1, ReplicationFactor: 1})
	if !errors.Is(err, ErrRefused) || e.log.Offset() != 5 || e.log.seg.EndOffset() != 5 {
		t.Fatalf("refused append: %v, offset %d, log end %d", err, e.log.Offset(), e.log.seg.EndOffset())
	}
	// A big group is compressed and still one atomic batch.
	e.append(createTopic("big", 200)...)
	before := e.snapshotBytes()
	e.reopen()
	if after := e.snapshotBytes(); after != before || e.log.Offset() != 206 {
		t.Fatalf("state after reopen differs (offset %d)", e.log.Offset())
	}
	b, err := e.log.seg.Read(5, 1<<20, nil)
	if h, _ := segment.ParseHeader(b); err != nil || h.Codec() != segment.CodecZstd || h.RecordCount != 201 {
		t.Fatalf("big group batch: codec %d, %d records, %v", h.Codec(), h.RecordCount, err)
	}
}

func TestConcurrentAppendsShareSyncs(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1})
	e.append(reg(1, inc1))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 32 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := e.log.Append(createTopic(fmt.Sprintf("w%d-t%d", w, i), 1)...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var topics int
	e.log.View(func(s *State) { topics = len(s.Topics) })
	if topics != 640 {
		t.Fatalf("%d topics, want 640", topics)
	}
	before := e.snapshotBytes()
	e.reopen()
	if e.snapshotBytes() != before {
		t.Fatal("state after reopen differs")
	}
}

// hundredTopicsLog is a log of 4 KiB segments, without automatic
// snapshots, holding a broker and 100 topics; after(e, i) runs once topic
// i is created.
func hundredTopicsLog(t *testing.T, after func(e *logEnv, i int)) *logEnv {
	t.Helper()
	cfg := testSegment()
	cfg.SegmentBytes = 4096
	e := newLogEnv(t, Options{SnapshotBytes: -1, Segment: cfg})
	e.append(reg(1, inc1))
	for i := range 100 {
		e.append(createTopic(fmt.Sprintf("t%d", i), 2)...)
		after(e, i)
	}
	return e
}

func TestSnapshotReopenAndSegmentDeletion(t *testing.T) {
	e := hundredTopicsLog(t, func(e *logEnv, i int) {
		if i == 40 || i == 80 {
			if err := e.log.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	})
	names, _ := snapshots(e.fs, e.log.Dir())
	if len(names) != 2 {
		t.Fatalf("snapshots %v", names)
	}
	start := e.log.seg.StartOffset()
	first, _ := parseSnapshotName(names[1])
	if start == 0 || start > first {
		t.Fatalf("log start %d: segments covered by the older snapshot (%d) should be gone, and no more", start, first)
	}
	before := e.snapshotBytes()
	e.reopen()
	if e.snapshotBytes() != before {
		t.Fatal("state after reopen from snapshot differs")
	}
	// The newest snapshot damaged: the older one and the log still give the state.
	newest := filepath.Join(e.log.Dir(), names[0])
	b, _ := e.fs.ReadFile(newest)
	b[len(b)/2] ^= 0xff
	e.fs.WriteFile(newest, b)
	e.reopen()
	if e.snapshotBytes() != before {
		t.Fatal("state after falling back to the older snapshot differs")
	}
}

// TestOversizeStateIsNotSnapshotted: a state whose snapshot body would be
// larger than a snapshot may be read back is not written as one (and no
// segment goes): the log reopens whole, from its segments.
func TestOversizeStateIsNotSnapshotted(t *testing.T) {
	defer func(n int) { maxSnapshotBody = n }(maxSnapshotBody)
	e := hundredTopicsLog(t, func(*logEnv, int) {})
	maxSnapshotBody = 1 << 10
	if err := e.log.Snapshot(); !errors.Is(err, ErrSnapshotTooLarge) {
		t.Fatalf("snapshot of a state over the bound: %v", err)
	}
	if names, _ := snapshots(e.fs, e.log.Dir()); len(names) != 0 {
		t.Fatalf("snapshots written: %v", names)
	}
	if start := e.log.seg.StartOffset(); start != 0 {
		t.Fatalf("the log starts at %d: segments went", start)
	}
	before := e.snapshotBytes()
	e.reopen()
	if e.snapshotBytes() != before {
		t.Fatal("state after reopen differs")
	}
}

// TestCrashWhileSnapshotting crashes the file system while a snapshot is
// being written, at random moments: the log reopens, with every
// acknowledged event.
func TestCrashWhileSnapshotting(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 3))
		e := &logEnv{t: t, fs: segmenttest.NewMemFS(), opts: Options{SnapshotBytes: -1, Segment: testSegment()}}
		e.open()
		e.append(reg(1, inc1))
		for i := range 30 {
			e.append(createTopic(fmt.Sprintf("t%d", i), 3)...)
		}
		if seed%2 == 0 {
			if err := e.log.Snapshot(); err != nil {
				t.Fatal(err)
			}
			e.append(createTopic("after-first-snapshot", 1)...)
		}
		acked := e.snapshotBytes()
		done := make(chan struct{})
		go func() { e.log.Snapshot(); close(done) }()
		time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
		crashed := e.fs.Crash(rng)
		<-done
		e.close()
		e.fs = crashed
		e.open()
		if e.snapshotBytes() != acked {
			t.Fatalf("seed %d: state after a crash during a snapshot differs", seed)
		}
		e.close()
	}
}

func TestTornSnapshotFileIsSkipped(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1})
	e.append(reg(1, inc1))
	e.append(createTopic("a", 2)...)
	before := e.snapshotBytes()
	data := EncodeSnapshot(func() *State { var s *State; e.log.View(func(x *State) { s = x.Clone() }); return s }(), 0)
	// A snapshot renamed into place with only part of its bytes.
	e.fs.WriteFile(filepath.Join(e.log.Dir(), SnapshotName(e.log.Offset(), 0)), data[:len(data)/2])
	e.reopen()
	if e.snapshotBytes() != before {
		t.Fatal("state differs after skipping a torn snapshot")
	}
}

func TestFailedSyncFailsTheLog(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1})
	e.append(reg(1, inc1))
	e.fs.FailSyncs(1)
	if _, err := e.log.Append(createTopic("lost", 1)...); err == nil {
		t.Fatal("append with a failing sync succeeded")
	}
	if _, err := e.log.Append(createTopic("after", 1)...); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after a failed sync: %v, want ErrFailed", err)
	}
	var lost bool
	e.log.View(func(s *State) { lost = s.Topics["lost"] != nil })
	if lost {
		t.Fatal("the readers' state holds an event that is not durable")
	}
	e.reopen()
	e.log.View(func(s *State) { lost = s.Topics["lost"] != nil })
	if lost || e.log.Offset() != 1 {
		t.Fatalf("after reopen: lost topic present %v, offset %d", lost, e.log.Offset())
	}
	e.append(createTopic("again", 1)...)
}

func TestFailedWriteIsUndone(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1})
	e.append(reg(1, inc1))
	e.fs.FailWrites(1)
	if _, err := e.log.Append(createTopic("lost", 1)...); err == nil {
		t.Fatal("append with a failing write succeeded")
	}
	// Nothing was written: the log goes on, and the refused topic's name is free.
	e.append(createTopic("lost", 2)...)
	var parts int
	e.log.View(func(s *State) { parts = len(s.Topics["lost"].Partitions) })
	if parts != 2 || e.log.Offset() != 4 {
		t.Fatalf("after a failed write: %d partitions, offset %d", parts, e.log.Offset())
	}
	before := e.snapshotBytes()
	e.reopen()
	if e.snapshotBytes() != before {
		t.Fatal("state after reopen differs")
	}
}

// TestNegativeSnapshotBytesTurnsSnapshotsOff: the Raft fallback path opens
// its metadata log with SnapshotBytes < 0 and replays Raft's entries over
// it at start; a snapshot taken on the interval anyway deleted segments
// that replay needed, once the node had run for the interval.
func TestNegativeSnapshotBytesTurnsSnapshotsOff(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1, SnapshotInterval: time.Nanosecond})
	e.append(reg(1, inc1))
	for i := range 20 {
		e.append(createTopic(fmt.Sprintf("t%d", i), 1)...)
	}
	time.Sleep(100 * time.Millisecond) // a snapshot is taken in the background
	if names, _ := snapshots(e.fs, e.log.Dir()); len(names) != 0 {
		t.Fatalf("snapshots %v with automatic snapshots off", names)
	}
}
