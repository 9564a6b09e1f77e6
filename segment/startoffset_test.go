package segment_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func TestDeleteRecordsBefore(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 2 << 10 // a few dozen batches per segment
	e := newEnv(t, cfg)
	appendValues(e, "a", 0, 100)
	segments := e.log.Segments()
	if segments < 3 {
		t.Fatalf("%d segments, want several", segments)
	}

	start, err := e.log.DeleteRecordsBefore(55)
	if err != nil || start != 55 || e.log.StartOffset() != 55 {
		t.Fatalf("delete before 55: start %d (log says %d), %v", start, e.log.StartOffset(), err)
	}
	if _, err := e.log.Read(54, 1, nil); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Fatalf("read of a deleted record: %v, want ErrOffsetOutOfRange", err)
	}
	if got, w := fmt.Sprint(e.values()), want("a", 55, 100); got != w {
		t.Fatalf("after the deletion\n got %s\nwant %s", got, w)
	}
	if e.log.Segments() >= segments {
		t.Fatalf("%d segments after deleting more than half, %d before", e.log.Segments(), segments)
	}
	if off, _, ok, err := e.log.LookupTime(0); err != nil || !ok || off != 55 {
		t.Fatalf("lookup of timestamp 0: %d %v %v, want the start 55", off, ok, err)
	}

	// Below the start changes nothing; past the high watermark is refused.
	if start, err := e.log.DeleteRecordsBefore(20); err != nil || start != 55 {
		t.Fatalf("delete before 20: %d, %v", start, err)
	}
	if _, err := e.log.DeleteRecordsBefore(101); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %v", err)
	}

	e.reopen()
	if e.log.StartOffset() != 55 {
		t.Fatalf("start %d after reopening, want 55", e.log.StartOffset())
	}
	// Up to the high watermark: nothing left to read, appends go on.
	if start, err := e.log.DeleteRecordsBefore(100); err != nil || start != 100 {
		t.Fatalf("delete everything: %d, %v", start, err)
	}
	appendValues(e, "b", 100, 103)
	e.reopen()
	if got, w := fmt.Sprint(e.values()), want("b", 100, 103); got != w || e.log.StartOffset() != 100 {
		t.Fatalf("after reopening: start %d\n got %s\nwant %s", e.log.StartOffset(), got, w)
	}

	// A reset starts the log anew: the deletion's start no longer applies.
	if err := e.log.ResetTo(50); err != nil {
		t.Fatal(err)
	}
	appendValues(e, "c", 50, 52)
	e.reopen()
	if got, w := fmt.Sprint(e.values()), want("c", 50, 52); got != w || e.log.StartOffset() != 50 {
		t.Fatalf("after a reset and reopening: start %d\n got %s\nwant %s", e.log.StartOffset(), got, w)
	}
}

// TestDeleteRecordsSurvivesCrashes: once DeleteRecordsBefore returns, a
// crash keeps the new start; a deletion that failed (a sync failed) leaves
// the old start or the new one, and every record from it intact.
func TestDeleteRecordsSurvivesCrashes(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 5))
		cfg := smallConfig()
		cfg.SegmentBytes = int64(2<<10 + rng.IntN(8<<10))
		e := newEnv(t, cfg)
		n := 5 + rng.IntN(120)
		appendValues(e, "a", 0, n)
		first := rng.IntN(n + 1)
		if _, err := e.log.DeleteRecordsBefore(int64(first)); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		second := first + rng.IntN(n-first+1)
		failed := rng.IntN(3) == 0
		if failed {
			e.fs.FailSyncs(1 + rng.IntN(2))
		}
		_, err := e.log.DeleteRecordsBefore(int64(second))
		if (err != nil) != (failed && second > first) {
			t.Fatalf("seed %d: deletion before %d (start %d, syncs failing %v): %v", seed, second, first, failed, err)
		}
		e.fs.FailSyncs(0)
		e.fs = e.fs.Crash(rng)
		e.open()
		start := int(e.log.StartOffset())
		if start != second && !(err != nil && start == first) {
			t.Fatalf("seed %d: start %d after a crash, want %d (or %d: the deletion failed: %v)", seed, start, second, first, err)
		}
		if got, w := fmt.Sprint(e.values()), want("a", start, n); got != w {
			t.Fatalf("seed %d: after a crash\n got %s\nwant %s", seed, got, w)
		}
		e.store.Close()
	}
}

func TestStartOffsetFileDamage(t *testing.T) {
	e := newEnv(t, smallConfig())
	appendValues(e, "a", 0, 10)
	if _, err := e.log.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	e.store.Close()
	path := "/data/orders-0/log-start-offset"
	b, err := e.fs.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[6] ^= 1
	e.fs.WriteFile(path, b)
	// A damaged file is ignored: the deleted records are served again,
	// nothing else is lost.
	e.open()
	if got, w := fmt.Sprint(e.values()), want("a", 0, 10); got != w || e.log.StartOffset() != 0 {
		t.Fatalf("with a damaged start file: start %d\n got %s\nwant %s", e.log.StartOffset(), got, w)
	}
	if _, err := e.log.Append(segmenttest.Values(10, "a10"), 0, 1); err != nil {
		t.Fatal(err)
	}
}
