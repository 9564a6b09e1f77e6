package segment_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// values reads every record value of the log, in order.
func (e *env) values() []string {
	e.t.Helper()
	var out []string
	for off := e.log.StartOffset(); off < e.log.HighWatermark(); {
		b, err := e.log.Read(off, 1, nil)
		if err != nil {
			e.t.Fatalf("read %d: %v", off, err)
		}
		recs, err := segment.DecodeRecords(b, 1<<20)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, string(r.Value))
			off = r.Offset + 1
		}
	}
	return out
}

func appendValues(e *env, prefix string, from, to int) {
	for i := from; i < to; i++ {
		e.append(segmenttest.Values(int64(i), fmt.Sprintf("%s%d", prefix, i)))
	}
}

func want(prefixes ...any) string {
	// want("a", 0, 3, "b", 3, 5) -> [a0 a1 a2 b3 b4]
	var out []string
	for i := 0; i < len(prefixes); i += 3 {
		for j := prefixes[i+1].(int); j < prefixes[i+2].(int); j++ {
			out = append(out, fmt.Sprintf("%s%d", prefixes[i], j))
		}
	}
	return fmt.Sprint(out)
}

func TestTruncateActiveSegment(t *testing.T) {
	e := newEnv(t, smallConfig())
	appendValues(e, "a", 0, 10)
	if err := e.log.TruncateTo(6); err != nil {
		t.Fatal(err)
	}
	if e.log.EndOffset() != 6 || e.log.HighWatermark() != 6 {
		t.Fatalf("after truncating to 6: end %d, high watermark %d", e.log.EndOffset(), e.log.HighWatermark())
	}
	appendValues(e, "b", 6, 8)
	if got := fmt.Sprint(e.values()); got != want("a", 0, 6, "b", 6, 8) {
		t.Fatalf("after truncating and appending: %s", got)
	}
	e.reopen()
	if got := fmt.Sprint(e.values()); got != want("a", 0, 6, "b", 6, 8) || e.log.EndOffset() != 8 {
		t.Fatalf("after reopening: %s, end %d", got, e.log.EndOffset())
	}
}

func TestTruncateIntoSealedSegment(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 4 << 10
	e := newEnv(t, cfg)
	for i := range 60 {
		e.append(segmenttest.Batch{Records: []segmenttest.Record{{Value: fmt.Appendf(nil, "a%d", i)}, {Value: make([]byte, 300)}}}.Build())
	}
	segs := e.log.Segments()
	if segs < 4 {
		t.Fatalf("want several segments, have %d", segs)
	}
	if err := e.log.TruncateTo(40); err != nil { // batch 20, in an early segment
		t.Fatal(err)
	}
	if e.log.EndOffset() != 40 || e.log.Segments() >= segs {
		t.Fatalf("after truncating into a sealed segment: end %d, %d segments (had %d)", e.log.EndOffset(), e.log.Segments(), segs)
	}
	e.append(segmenttest.Values(0, "b"))
	hs := e.readAll(0)
	if len(hs) != 21 || hs[20].BaseOffset != 40 {
		t.Fatalf("%d batches, last at %d; want 21, the new one at 40", len(hs), hs[len(hs)-1].BaseOffset)
	}
	e.reopen()
	if hs := e.readAll(0); len(hs) != 21 || e.log.EndOffset() != 41 {
		t.Fatalf("after reopening: %d batches, end %d", len(hs), e.log.EndOffset())
	}
	for i := range 200 { // rolls again from the reactivated segment
		e.append(segmenttest.Sized(int64(i), 200))
	}
	e.reopen()
	if e.log.EndOffset() != 241 {
		t.Fatalf("end %d after more appends and a reopen, want 241", e.log.EndOffset())
	}
}

func TestTruncateRefusals(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(0, "x", "y", "z")) // offsets 0-2 in one batch
	e.append(segmenttest.Values(0, "w"))
	if err := e.log.TruncateTo(1); !errors.Is(err, segment.ErrNotBatchBoundary) {
		t.Errorf("truncate inside a batch: %v", err)
	}
	if err := e.log.TruncateTo(9); err != nil || e.log.EndOffset() != 4 {
		t.Errorf("truncate beyond the end: %v, end %d", err, e.log.EndOffset())
	}
	if err := e.log.TruncateTo(3); err != nil || e.log.EndOffset() != 3 {
		t.Errorf("truncate at a boundary: %v, end %d", err, e.log.EndOffset())
	}
	if err := e.log.TruncateTo(-1); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Errorf("truncate below the start: %v", err)
	}
}

// TestTruncateSurvivesCrashes: once TruncateTo returns, a crash (keeping
// random unsynced pages) never brings the removed batches back, and
// everything before the truncation point is intact.
func TestTruncateSurvivesCrashes(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 3))
		cfg := smallConfig()
		cfg.SegmentBytes = int64(2<<10 + rng.IntN(8<<10))
		cfg.Prezero = rng.IntN(2) == 0
		cfg.MmapWrites = rng.IntN(2) == 0
		e := newEnv(t, cfg)
		n := 5 + rng.IntN(60)
		appendValues(e, "a", 0, n)
		cut := rng.IntN(n + 1)
		if err := e.log.TruncateTo(int64(cut)); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		more := rng.IntN(5)
		appendValues(e, "b", cut, cut+more)
		e.fs = e.fs.Crash(rng)
		e.open()
		if got, w := fmt.Sprint(e.values()), want("a", 0, cut, "b", cut, cut+more); got != w {
			t.Fatalf("seed %d (%d appended, cut at %d, %d more): after a crash\n got %s\nwant %s", seed, n, cut, more, got, w)
		}
		e.store.Close()
	}
}

func TestResetTo(t *testing.T) {
	e := newEnv(t, smallConfig())
	appendValues(e, "a", 0, 10)
	if err := e.log.ResetTo(100); err != nil {
		t.Fatal(err)
	}
	if e.log.StartOffset() != 100 || e.log.EndOffset() != 100 || e.log.HighWatermark() != 100 {
		t.Fatalf("after reset: start %d end %d hw %d", e.log.StartOffset(), e.log.EndOffset(), e.log.HighWatermark())
	}
	if a := e.append(segmenttest.Values(0, "b")); a.Base != 100 {
		t.Fatalf("first append after the reset at %d, want 100", a.Base)
	}
	e.reopen()
	if got := fmt.Sprint(e.values()); got != "[b]" || e.log.StartOffset() != 100 || e.log.EndOffset() != 101 {
		t.Fatalf("after reopening: %s, start %d, end %d", got, e.log.StartOffset(), e.log.EndOffset())
	}
	e.fs = e.fs.Crash(rand.New(rand.NewPCG(1, 1)))
	e.open()
	if got := fmt.Sprint(e.values()); got != "[b]" || e.log.StartOffset() != 100 {
		t.Fatalf("after a crash: %s, start %d", got, e.log.StartOffset())
	}
}
