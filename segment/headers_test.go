package segment_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestHeadersWalksEveryDurableBatch: Headers reports each durable batch
// once, in offset order, across sealed segments and the active one, and
// the same after a reopen.
func TestHeadersWalksEveryDurableBatch(t *testing.T) {
	e := newEnv(t, smallConfig())
	var want []int64
	for i := range 200 {
		b := segmenttest.Batch{Idempotent: true, ProducerID: 7, BaseSequence: int32(i * 2),
			Records: []segmenttest.Record{{Value: make([]byte, 500)}, {Value: []byte("x")}}}.Build()
		want = append(want, e.append(b).Base)
	}
	check := func(when string) {
		t.Helper()
		var got []int64
		err := e.log.Headers(-1, func(h *segment.BatchHeader, _ []byte) error {
			if h.ProducerID != 7 || h.BaseSequence != int32(len(got)*2) || h.LastOffsetDelta != 1 {
				t.Fatalf("%s: batch %d: header %+v", when, len(got), *h)
			}
			got = append(got, h.BaseOffset)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d batches, want %d", when, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: batch %d at offset %d, want %d", when, i, got[i], want[i])
			}
		}
	}
	names, err := e.fs.ReadDir("/data/orders-0")
	if err != nil {
		t.Fatal(err)
	}
	logs := 0
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			logs++
		}
	}
	if logs < 2 {
		t.Fatalf("%d segment files: the test needs sealed ones", logs)
	}
	check("open")
	e.reopen()
	check("reopened")
}

// TestHeadersSince: sealed segments whose batches are all older than since
// are left out; the active segment, and sealed ones with a batch at or
// after since, are read whole.
func TestHeadersSince(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 2000
	e := newEnv(t, cfg)
	for _, ts := range []int64{100, 110, 120, 130, 140, 500, 150, 160, 90} { // 500-byte batches, 4 a segment
		e.append(segmenttest.Sized(ts, 500))
	}
	var got []int64
	if err := e.log.Headers(400, func(h *segment.BatchHeader, _ []byte) error {
		got = append(got, h.BaseOffset)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Segments: [0-3] all before 400, [4-7] with 500, [8] active.
	if want := []int64{4, 5, 6, 7, 8}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Headers(400) visited %v, want %v", got, want)
	}
}
