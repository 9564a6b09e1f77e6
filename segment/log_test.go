package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// env is a store on a MemFS with one log, for table tests.
type env struct {
	t     *testing.T
	fs    *segmenttest.MemFS
	store *segment.Store
	log   *segment.Log
	cfg   segment.Config
}

func smallConfig() segment.Config {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 64 << 10
	cfg.IndexIntervalBytes = 256
	cfg.PreallocateBytes = 16 << 10
	cfg.RetentionMs = -1
	return cfg
}

func newEnv(t *testing.T, cfg segment.Config) *env {
	t.Helper()
	e := &env{t: t, fs: segmenttest.NewMemFS(), cfg: cfg}
	e.open()
	t.Cleanup(func() { e.store.Close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	st, err := segment.OpenStore("/data", segment.StoreOptions{FS: e.fs, RetentionCheckInterval: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := st.Open("orders", 0, e.cfg)
	if err != nil {
		st.Close()
		e.t.Fatal(err)
	}
	e.store, e.log = st, l
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) append(batch []byte) *segment.Appended {
	e.t.Helper()
	a, err := e.log.Append(batch, 7, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// readAll reads every batch from offset from, one Read at a time.
func (e *env) readAll(from int64) []segment.BatchHeader {
	e.t.Helper()
	var out []segment.BatchHeader
	for off := from; off < e.log.HighWatermark(); {
		b, err := e.log.Read(off, 1, nil)
		if err != nil {
			e.t.Fatalf("read %d: %v", off, err)
		}
		h, err := segment.ValidateBatch(b, 0)
		if err != nil {
			e.t.Fatalf("read %d: stored batch invalid: %v", off, err)
		}
		out = append(out, h)
		off = h.LastOffset() + 1
	}
	return out
}

func TestAppendAssignsOffsetsAndEpoch(t *testing.T) {
	e := newEnv(t, smallConfig())
	for i, n := range []int{1, 3, 2} {
		vals := make([]string, n)
		for j := range vals {
			vals[j] = fmt.Sprintf("v%d-%d", i, j)
		}
		e.append(segmenttest.Values(1000, vals...))
	}
	got := e.readAll(0)
	want := []struct{ base, last int64 }{{0, 0}, {1, 3}, {4, 5}}
	if len(got) != len(want) {
		t.Fatalf("got %d batches, want %d", len(got), len(want))
	}
	for i, h := range got {
		if h.BaseOffset != want[i].base || h.LastOffset() != want[i].last || h.PartitionLeaderEpoch != 7 {
			t.Errorf("batch %d: offsets %d..%d epoch %d, want %d..%d epoch 7", i, h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch, want[i].base, want[i].last)
		}
	}
	if e.log.EndOffset() != 6 || e.log.HighWatermark() != 6 || e.log.StartOffset() != 0 {
		t.Errorf("offsets: end %d hw %d start %d", e.log.EndOffset(), e.log.HighWatermark(), e.log.StartOffset())
	}
}

func TestAppendRejectsBadBatches(t *testing.T) {
	good := segmenttest.Values(1, "a", "b")
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	cfg := smallConfig()
	cfg.MaxMessageBytes = 1000
	tests := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"empty", nil, segment.ErrCorruptBatch},
		{"short header", good[:40], segment.ErrCorruptBatch},
		{"truncated records", good[:len(good)-1], segment.ErrCorruptBatch},
		{"trailing garbage", append(bytes.Clone(good), 0), segment.ErrCorruptBatch},
		{"bad crc", flip(len(good) - 1), segment.ErrCorruptBatch},
		{"magic 1", func() []byte { b := bytes.Clone(good); b[16] = 1; return b }(), segment.ErrUnsupportedMagic},
		{"codec 7", func() []byte {
			b := bytes.Clone(good)
			b[22] |= 7
			return fixCRC(b)
		}(), segment.ErrInvalidBatch},
		{"negative count", func() []byte {
			b := bytes.Clone(good)
			b[57] = 0xff
			return fixCRC(b)
		}(), segment.ErrInvalidBatch},
		{"too large", segmenttest.Sized(1, 1001), segment.ErrBatchTooLarge},
	}
	e := newEnv(t, cfg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.log.Append(tc.batch, 0, 1)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if e.log.EndOffset() != 0 || e.log.Size() != 0 {
				t.Fatalf("a refused batch was written: end %d size %d", e.log.EndOffset(), e.log.Size())
			}
		})
	}
	e.append(segmenttest.Sized(1, 1000))
}

func TestReadSemantics(t *testing.T) {
	e := newEnv(t, smallConfig())
	var sizes []int
	for i := range 10 {
		b := segmenttest.Values(int64(i), "a", "b", "c") // offsets 3i..3i+2
		sizes = append(sizes, len(b))
		e.append(b)
	}
	tests := []struct {
		name      string
		offset    int64
		maxBytes  int
		wantBases []int64
		wantErr   error
	}{
		{"first batch", 0, sizes[0], []int64{0}, nil},
		{"offset inside a batch", 4, sizes[0], []int64{3}, nil},
		{"maxBytes smaller than a batch still gives one", 7, 1, []int64{6}, nil},
		{"several batches", 0, sizes[0] * 3, []int64{0, 3, 6}, nil},
		{"not more than maxBytes", 0, sizes[0]*3 - 1, []int64{0, 3}, nil},
		{"last batch", 29, 1 << 20, []int64{27}, nil},
		{"at high watermark", 30, 1 << 20, nil, nil},
		{"past high watermark", 31, 1 << 20, nil, segment.ErrOffsetOutOfRange},
		{"negative", -1, 1 << 20, nil, segment.ErrOffsetOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := e.log.Read(tc.offset, tc.maxBytes, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got := bases(t, b); fmt.Sprint(got) != fmt.Sprint(tc.wantBases) {
				t.Fatalf("bases %v, want %v", got, tc.wantBases)
			}
		})
	}
}

func bases(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	for len(b) > 0 {
		h, err := segment.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := segment.ValidateBatch(b[:h.Size()], 0); err != nil {
			t.Fatal(err)
		}
		out = append(out, h.BaseOffset)
		b = b[h.Size():]
	}
	return out
}

func fixCRC(b []byte) []byte {
	return segmenttest.FixCRC(b)
}

func TestRollBySizeAndReadAcrossSegments(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 4096
	e := newEnv(t, cfg)
	batch := segmenttest.Sized(1, 1000)
	for range 20 {
		e.append(batch)
	}
	// 4 batches of 1000 bytes fit in 4096: 5 segments.
	if n := e.log.Segments(); n != 5 {
		t.Fatalf("%d segments, want 5", n)
	}
	if got := len(e.readAll(0)); got != 20 {
		t.Fatalf("read %d batches, want 20", got)
	}
	files := e.fs.Files()
	for _, want := range []string{"/data/orders-0/00000000000000000000.log", "/data/orders-0/00000000000000000000.index", "/data/orders-0/00000000000000000000.timeindex", "/data/orders-0/00000000000000000016.log"} {
		if !contains(files, want) {
			t.Errorf("missing %s in %v", want, files)
		}
	}
	// Sealed segments are trimmed to their length.
	b, _ := e.fs.ReadFile("/data/orders-0/00000000000000000000.log")
	if len(b) != 4000 {
		t.Errorf("sealed segment is %d bytes, want 4000", len(b))
	}
	e.reopen()
	if got := len(e.readAll(0)); got != 20 || e.log.EndOffset() != 20 {
		t.Fatalf("after reopen: %d batches, end %d", got, e.log.EndOffset())
	}
	// Appends continue in the same active segment after a restart.
	e.append(batch)
	if n := e.log.Segments(); n != 6 {
		t.Fatalf("%d segments after reopen and append, want 6", n)
	}
}

func TestRollByTime(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentMs = 20 * time.Millisecond
	e := newEnv(t, cfg)
	e.append(segmenttest.Values(1, "a"))
	e.append(segmenttest.Values(1, "b"))
	time.Sleep(30 * time.Millisecond)
	e.append(segmenttest.Values(1, "c"))
	if n := e.log.Segments(); n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestIndexesRebuiltWhenMissingOrDamaged(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 8192
	e := newEnv(t, cfg)
	for i := range 40 {
		e.append(segmenttest.Sized(int64(1000+i), 500))
	}
	before := e.readAll(0)
	e.store.Close()
	e.fs.Remove("/data/orders-0/00000000000000000000.index")
	e.fs.WriteFile("/data/orders-0/00000000000000000016.timeindex", []byte("garbage, not 12-byte entries"))
	e.fs.WriteFile("/data/orders-0/00000000000000000032.index", make([]byte, 16)) // two zero entries: out of order
	e.open()
	after := e.readAll(0)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("reads differ after rebuilding indexes")
	}
	if b, _ := e.fs.ReadFile("/data/orders-0/00000000000000000000.index"); len(b) == 0 || len(b)%8 != 0 {
		t.Fatalf("index not rebuilt: %d bytes", len(b))
	}
	off, _, ok, err := e.log.LookupTime(1020)
	if err != nil || !ok || off != 20 {
		t.Fatalf("LookupTime after rebuild: %d %v %v", off, ok, err)
	}
}

func TestLookupTime(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 4096
	e := newEnv(t, cfg)
	// Timestamps rise by 10 per batch, with one out-of-order batch.
	ts := []int64{100, 110, 120, 105, 130, 140, 150, 160, 170, 180, 190, 200}
	for _, x := range ts {
		e.append(segmenttest.Sized(x, 700))
	}
	tests := []struct {
		ts    int64
		want  int64
		found bool
	}{
		{0, 0, true},
		{100, 0, true},
		{101, 1, true},
		{106, 1, true},
		{120, 2, true},
		{121, 4, true},
		{175, 9, true},
		{200, 11, true},
		{201, 0, false},
	}
	for _, tc := range tests {
		off, _, ok, err := e.log.LookupTime(tc.ts)
		if err != nil || ok != tc.found || (ok && off != tc.want) {
			t.Errorf("LookupTime(%d) = %d %v %v, want %d %v", tc.ts, off, ok, err, tc.want, tc.found)
		}
	}
}

func TestRetention(t *testing.T) {
	now := time.Now()
	old := now.Add(-2 * time.Hour).UnixMilli()
	recent := now.UnixMilli()
	tests := []struct {
		name      string
		ms        time.Duration
		bytes     int64
		ts        []int64
		wantGone  int
		wantStart int64
	}{
		{"nothing expired", time.Hour, -1, []int64{recent, recent, recent, recent, recent, recent, recent, recent, recent}, 0, 0},
		{"old segments by time", time.Hour, -1, []int64{old, old, old, old, old, old, recent, recent, recent}, 2, 6},
		{"never the active segment", time.Hour, -1, []int64{old, old, old, old, old, old, old, old, old}, 2, 6},
		// Kafka deletes a segment only if the rest still holds retention.bytes.
		{"by bytes", -1, 4000, []int64{recent, recent, recent, recent, recent, recent, recent, recent, recent}, 1, 3},
		{"by bytes, exact", -1, 3000, []int64{recent, recent, recent, recent, recent, recent, recent, recent, recent}, 2, 6},
		{"no limits", -1, -1, []int64{old, old, old, old, old, old, old, old, old}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.SegmentBytes = 3000 // three 1000-byte batches a segment
			cfg.RetentionMs = tc.ms
			cfg.RetentionBytes = tc.bytes
			e := newEnv(t, cfg)
			for _, x := range tc.ts {
				e.append(segmenttest.Sized(x, 1000))
			}
			gone, err := e.log.Retention(now)
			if err != nil || gone != tc.wantGone || e.log.StartOffset() != tc.wantStart {
				t.Fatalf("gone %d start %d err %v, want %d %d", gone, e.log.StartOffset(), err, tc.wantGone, tc.wantStart)
			}
			if _, err := e.log.Read(tc.wantStart-1, 1, nil); tc.wantStart > 0 && !errors.Is(err, segment.ErrOffsetOutOfRange) {
				t.Fatalf("read below start: %v", err)
			}
			e.reopen()
			if e.log.StartOffset() != tc.wantStart || e.log.EndOffset() != 9 {
				t.Fatalf("after reopen start %d end %d", e.log.StartOffset(), e.log.EndOffset())
			}
			if got := len(e.readAll(tc.wantStart)); got != 9-int(tc.wantStart) {
				t.Fatalf("read %d batches after retention", got)
			}
		})
	}
}

func TestMappedSegmentsAreCapped(t *testing.T) {
	fs := segmenttest.NewMemFS()
	st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, MaxMappedSegments: 2, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := smallConfig()
	cfg.SegmentBytes = 1000
	l, _ := st.Open("t", 0, cfg)
	for range 10 {
		a, err := l.Append(segmenttest.Sized(1, 900), 0, 1)
		if err != nil || a.Wait() != nil {
			t.Fatal(err)
		}
	}
	if l.Segments() != 10 {
		t.Fatalf("%d segments, want 10", l.Segments())
	}
	for round := range 2 {
		for off := int64(0); off < 10; off++ {
			if b, err := l.Read(off, 1, nil); err != nil || len(b) != 900 {
				t.Fatalf("round %d: read %d: %d bytes, %v", round, off, len(b), err)
			}
			if n := st.Stats().MappedSegs; n > 2 {
				t.Fatalf("%d sealed segments mapped, cap 2", n)
			}
		}
	}
}

func TestMaxTimestamp(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 2000
	e := newEnv(t, cfg)
	if _, _, ok, err := e.log.MaxTimestamp(); ok || err != nil {
		t.Fatalf("empty log: ok %v err %v", ok, err)
	}
	// 500-byte batches, four a segment at most: the max sits in a sealed
	// segment first, then in the active one.
	for _, ts := range []int64{10, 50, 20, 50, 30} {
		e.append(segmenttest.Sized(ts, 500))
	}
	ts, off, ok, err := e.log.MaxTimestamp()
	if err != nil || !ok || ts != 50 || off != 1 {
		t.Fatalf("MaxTimestamp = %d at %d (%v %v), want 50 at 1", ts, off, ok, err)
	}
	e.append(segmenttest.Sized(70, 500))
	e.append(segmenttest.Sized(60, 500))
	ts, off, _, _ = e.log.MaxTimestamp()
	if ts != 70 || off != 5 {
		t.Fatalf("MaxTimestamp = %d at %d, want 70 at 5", ts, off)
	}
	e.reopen()
	ts, off, _, _ = e.log.MaxTimestamp()
	if ts != 70 || off != 5 {
		t.Fatalf("after reopen MaxTimestamp = %d at %d, want 70 at 5", ts, off)
	}
}

// TestRollThenDeleteBefore: Roll makes everything appended durable and
// sealed, so that DeleteSegmentsBefore its offset removes all of it (what
// a compaction does once its copy is appended); rolling an empty active
// segment changes nothing.
func TestRollThenDeleteBefore(t *testing.T) {
	e := newEnv(t, smallConfig())
	for range 3 {
		if _, err := e.log.Append(segmenttest.Sized(1, 100), 0, 0); err != nil { // not waited for
			t.Fatal(err)
		}
	}
	at, err := e.log.Roll()
	if err != nil || at != 3 {
		t.Fatalf("roll: at %d, %v; want 3", at, err)
	}
	if hw := e.log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d after the roll, want 3: the sealed data is durable", hw)
	}
	if again, err := e.log.Roll(); err != nil || again != 3 || e.log.Segments() != 2 {
		t.Fatalf("roll of an empty segment: at %d, %v, %d segments; want 3 and 2 segments", again, err, e.log.Segments())
	}
	e.append(segmenttest.Sized(2, 100))
	if gone, err := e.log.DeleteSegmentsBefore(at); err != nil || gone != 1 || e.log.StartOffset() != 3 {
		t.Fatalf("delete before %d: %d gone, start %d, %v", at, gone, e.log.StartOffset(), err)
	}
	e.reopen()
	if e.log.StartOffset() != 3 || e.log.EndOffset() != 4 || len(e.readAll(3)) != 1 {
		t.Fatalf("after reopen: start %d end %d", e.log.StartOffset(), e.log.EndOffset())
	}
}

// TestTimestampLookupsFindTheRecord: ListOffsets by timestamp and
// MAX_TIMESTAMP answer with a record's offset inside a batch, not the
// batch's first, in sealed and active segments and through compression.
func TestTimestampLookupsFindTheRecord(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 2000
	e := newEnv(t, cfg)
	batch := func(codec int, ts ...int64) []byte {
		b := segmenttest.Batch{BaseTimestamp: ts[0], Codec: codec}
		for _, x := range ts {
			b.Records = append(b.Records, segmenttest.Record{Value: make([]byte, 300), TimestampDelta: x - ts[0]})
		}
		return b.Build()
	}
	e.append(batch(segment.CodecNone, 100, 200, 300))      // offsets 0-2
	e.append(batch(segment.CodecZstd, 400, 900, 500, 600)) // 3-6, out of order
	for i, want := range map[int64]int64{100: 0, 150: 1, 300: 2, 301: 3, 450: 4, 900: 4} {
		if off, _, ok, err := e.log.LookupTime(i); err != nil || !ok || off != want {
			t.Errorf("LookupTime(%d) = %d %v %v, want %d", i, off, ok, err, want)
		}
	}
	for range 2 { // in the active segment, then sealed
		if ts, off, ok, err := e.log.MaxTimestamp(); err != nil || !ok || ts != 900 || off != 4 {
			t.Fatalf("MaxTimestamp = %d at %d (%v %v), want 900 at 4", ts, off, ok, err)
		}
		e.append(batch(segment.CodecNone, 10, 20, 30, 40, 50))
	}
}

// TestHeaderAt: the header of the batch holding an offset, in the active
// segment and in sealed ones, with the epoch it was appended at; offsets
// outside the durable log are out of range.
func TestHeaderAt(t *testing.T) {
	e := newEnv(t, smallConfig())
	var bases []int64
	for i := range 60 {
		a, err := e.log.Append(segmenttest.Values(1000, strings.Repeat("x", 2000), "y"), int32(i/20), 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
		bases = append(bases, a.Base)
	}
	if e.log.Segments() < 2 {
		t.Fatal("want sealed segments too")
	}
	for i, base := range bases {
		for _, off := range []int64{base, base + 1} {
			h, err := e.log.HeaderAt(off)
			if err != nil || h.BaseOffset != base || h.PartitionLeaderEpoch != int32(i/20) {
				t.Fatalf("HeaderAt(%d) = base %d epoch %d, %v; want base %d epoch %d", off, h.BaseOffset, h.PartitionLeaderEpoch, err, base, i/20)
			}
		}
	}
	for _, off := range []int64{-1, e.log.HighWatermark()} {
		if _, err := e.log.HeaderAt(off); !errors.Is(err, segment.ErrOffsetOutOfRange) {
			t.Fatalf("HeaderAt(%d): %v, want out of range", off, err)
		}
	}
}

// TestReadWritten: ReadWritten serves batches written but not yet durable,
// which Read does not.
func TestReadWritten(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(1, "a", "b")) // offsets 0-1, durable
	release := e.fs.HoldSyncs()
	defer release()
	a, err := e.log.Append(segmenttest.Values(2, "c"), 7, 1) // offset 2, written
	if err != nil {
		t.Fatal(err)
	}
	if b, err := e.log.Read(2, 1<<20, nil); err != nil || len(b) != 0 {
		t.Fatalf("Read served the undurable batch: %d bytes, %v", len(b), err)
	}
	if _, err := e.log.Read(3, 1<<20, nil); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Fatalf("Read past the high watermark: %v", err)
	}
	for _, tc := range []struct {
		offset int64
		want   []int64
		err    error
	}{
		{0, []int64{0, 2}, nil},
		{2, []int64{2}, nil},
		{3, nil, nil},
		{4, nil, segment.ErrOffsetOutOfRange},
	} {
		b, err := e.log.ReadWritten(tc.offset, 1<<20, nil)
		if !errors.Is(err, tc.err) {
			t.Fatalf("ReadWritten(%d): err %v, want %v", tc.offset, err, tc.err)
		}
		if got := bases(t, b); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("ReadWritten(%d): bases %v, want %v", tc.offset, got, tc.want)
		}
	}
	release()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	b, err := e.log.Read(2, 1<<20, nil)
	if got := bases(t, b); err != nil || fmt.Sprint(got) != "[2]" {
		t.Fatalf("Read after the sync: bases %v, %v", got, err)
	}
}

// TestLogAppendTime: with LogAppendTime each batch gets its append time as
// its max timestamp and timestamp type, with a CRC that matches, and
// every record reads back with that time.
func TestLogAppendTime(t *testing.T) {
	cfg := smallConfig()
	cfg.LogAppendTime = true
	e := newEnv(t, cfg)
	before := time.Now().UnixMilli()
	a := e.append(segmenttest.Values(1000, "a", "b", "c")) // producer time 1000 ms
	after := time.Now().UnixMilli()
	if a.LogAppendTime < before || a.LogAppendTime > after {
		t.Fatalf("append time %d outside [%d, %d]", a.LogAppendTime, before, after)
	}
	b, err := e.log.Read(0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := segment.ValidateBatch(b, 0) // the CRC covers the stamp
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != a.LogAppendTime {
		t.Fatalf("stored header: log append time %v, max timestamp %d, want %d", h.LogAppendTime(), h.MaxTimestamp, a.LogAppendTime)
	}
	recs, err := segment.DecodeRecords(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp != a.LogAppendTime {
			t.Fatalf("record %d has timestamp %d, want the append time %d", r.Offset, r.Timestamp, a.LogAppendTime)
		}
	}
	if off, at, found, err := e.log.LookupTime(a.LogAppendTime); err != nil || !found || off != 0 || at != a.LogAppendTime {
		t.Fatalf("lookup of the append time: %d at %d, %v %v", off, at, found, err)
	}
	if _, _, found, _ := e.log.LookupTime(a.LogAppendTime + 1); found {
		t.Fatal("lookup after the append time found a record")
	}

	// Without it the producer's time stays.
	cfg.LogAppendTime = false
	if err := e.log.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	a = e.append(segmenttest.Values(1000, "d"))
	b, _ = e.log.Read(a.Base, 1<<20, nil)
	h, _ = segment.ValidateBatch(b, 0)
	if a.LogAppendTime != -1 || h.LogAppendTime() || h.MaxTimestamp != 1000 {
		t.Fatalf("create time batch: append time %d, header %v/%d", a.LogAppendTime, h.LogAppendTime(), h.MaxTimestamp)
	}
}

// TestSmallAndLargeReadsAgree: a read of a few KiB is copied from the
// mapping, a larger one with pread; both give the stored bytes, for
// durable batches and for written ones not yet synced.
func TestSmallAndLargeReadsAgree(t *testing.T) {
	e := newEnv(t, smallConfig())
	for i := range 12 {
		e.append(segmenttest.Values(0, strings.Repeat("x", 100+i*300)))
	}
	whole, err := e.log.Read(0, 1<<20, nil) // pread
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) <= 4<<10 {
		t.Fatalf("the whole log is %d bytes: not a large read", len(whole))
	}
	var pieces []byte
	for off := int64(0); off < e.log.HighWatermark(); off++ {
		b, err := e.log.Read(off, 1, nil) // one batch: a mapped copy
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, b...)
	}
	if !bytes.Equal(pieces, whole) {
		t.Fatal("batches read one by one differ from the log read whole")
	}
	bases(t, whole) // every CRC holds

	// Written, not yet durable: ReadWritten sees it by either path.
	a, err := e.log.Append(segmenttest.Values(0, "unsynced"), 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	small, err := e.log.ReadWritten(a.Base, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.log.ReadWritten(0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all[len(whole):], small) || len(all) != len(whole)+len(small) {
		t.Fatalf("the written batch: %d bytes alone, %d after the durable ones", len(small), len(all)-len(whole))
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
}
