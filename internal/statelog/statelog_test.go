package statelog

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// keyed is a state of keys and their last values, replayed from a log.
type keyed map[string]string

func (k keyed) apply(_ *segment.BatchHeader, batch []byte) error {
	recs, err := segment.DecodeRecords(batch, 1<<20)
	if err != nil {
		return err
	}
	for _, r := range recs {
		k[string(r.Key)] = string(r.Value)
	}
	return nil
}

func write(t *testing.T, l *segment.Log, recs ...segment.Record) {
	t.Helper()
	a, err := l.Append(segment.BuildBatch(segment.AppendRecords(nil, recs), len(recs), segment.CodecNone, 1), 0, -1)
	if err != nil || a.Wait() != nil {
		t.Fatal(err)
	}
}

func openLog(t *testing.T) *segment.Log {
	t.Helper()
	st, err := segment.OpenStore("/d", segment.StoreOptions{FS: segmenttest.NewMemFS(), RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	l, err := st.Open("state", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReplay: every durable batch, in order, from any offset on; an error
// stops the replay at the batch that failed.
func TestReplay(t *testing.T) {
	l := openLog(t)
	for i := range 5 {
		write(t, l, segment.Record{Key: []byte(fmt.Sprint(i % 2)), Value: []byte(fmt.Sprint(i))}, segment.Record{Key: []byte("n"), Value: []byte(fmt.Sprint(i))})
	}
	state := keyed{}
	next, err := Replay(l, 0, state.apply)
	if err != nil || next != 10 || !maps.Equal(state, keyed{"0": "4", "1": "3", "n": "4"}) {
		t.Fatalf("replay: next %d, %v, state %v", next, err, state)
	}
	from6 := keyed{}
	if next, err := Replay(l, 6, from6.apply); err != nil || next != 10 || !maps.Equal(from6, keyed{"1": "3", "0": "4", "n": "4"}) {
		t.Fatalf("replay from 6: next %d, %v, state %v", next, err, from6)
	}
	calls := 0
	boom := errors.New("boom")
	next, err = Replay(l, 0, func(*segment.BatchHeader, []byte) error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || next != 4 {
		t.Fatalf("a failing batch: next %d, %v; want 4 (where the third batch starts)", next, err)
	}
}

// TestCompactor: below MinBytes nothing happens; above it the state is
// copied after a roll and the segments before deleted, and the log replays
// to the same state; right after, the log is not twice its compacted size
// and is left alone.
func TestCompactor(t *testing.T) {
	l := openLog(t)
	for i := range 200 {
		write(t, l, segment.Record{Key: []byte(fmt.Sprint(i % 3)), Value: []byte(fmt.Sprint(i))})
	}
	want := keyed{}
	if _, err := Replay(l, 0, want.apply); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	run := func(c *Compactor) (bool, int64, int64, error) {
		scratch := keyed{}
		return c.Run(Owner{
			Hold:   &mu,
			Closed: func() bool { return false },
			Replay: func(from int64) (int64, error) { return Replay(l, from, scratch.apply) },
			Copy: func() []func() error {
				var recs []segment.Record
				for k, v := range scratch {
					recs = append(recs, segment.Record{Key: []byte(k), Value: []byte(v)})
				}
				a, err := l.Append(segment.BuildBatch(segment.AppendRecords(nil, recs), len(recs), segment.CodecNone, 1), 0, -1)
				if err != nil {
					return []func() error{func() error { return err }}
				}
				return []func() error{a.Wait}
			},
		})
	}
	if done, _, _, err := run(&Compactor{Log: l, MinBytes: 1 << 30}); done || err != nil {
		t.Fatalf("below MinBytes: %v, %v", done, err)
	}
	c := &Compactor{Log: l, MinBytes: 1}
	done, before, after, err := run(c)
	if !done || err != nil || after*10 > before || l.StartOffset() != 200 {
		t.Fatalf("compact: %v, %v, %d -> %d bytes, log start %d", done, err, before, after, l.StartOffset())
	}
	got := keyed{}
	if _, err := Replay(l, l.StartOffset(), got.apply); err != nil || !maps.Equal(got, want) {
		t.Fatalf("after compaction the log replays to %v (%v), want %v", got, err, want)
	}
	if done, _, _, err := run(c); done || err != nil {
		t.Fatalf("right after a compaction: %v, %v", done, err)
	}
}

// TestSplit: batches of at most MaxBatchBytes of keys and values, in
// order, a record larger than that alone in its batch.
func TestSplit(t *testing.T) {
	rec := func(n int) segment.Record { return segment.Record{Key: []byte("k"), Value: make([]byte, n-1)} }
	recs := []segment.Record{rec(100 << 10), rec(100 << 10), rec(100 << 10), rec(300 << 10), rec(1)}
	var sizes []int
	for _, b := range Split(recs) {
		sizes = append(sizes, len(b))
	}
	if fmt.Sprint(sizes) != "[2 1 1 1]" {
		t.Fatalf("batches of %v records, want [2 1 1 1]", sizes)
	}
	if Split(nil) != nil {
		t.Fatal("nothing split into something")
	}
}
