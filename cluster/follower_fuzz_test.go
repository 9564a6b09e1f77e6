package cluster

import (
	"testing"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// FuzzAppendBatches: whatever a batch frame holds, a follower appends
// whole, valid, contiguous batches or refuses; it never panics, and its
// log never ends inside a batch.
func FuzzAppendBatches(f *testing.F) {
	src := memLog(f, nil)
	src.Lead(1)
	for _, evs := range [][]eventlog.Event{{&eventlog.BrokerRegistered{BrokerID: 1}}, createTopic("a"), createTopic("b")} {
		if _, err := src.Append(evs...); err != nil {
			f.Fatal(err)
		}
	}
	all, err := src.Segment().Read(0, 1<<20, nil)
	if err != nil {
		f.Fatal(err)
	}
	h, _ := segment.ParseHeader(all)
	f.Add(all, src.EpochBefore(0))
	f.Add(all[:h.Size()], src.EpochBefore(0))
	f.Add(all[:len(all)-1], src.EpochBefore(0))
	f.Add(all[h.Size():], src.EpochBefore(0))
	f.Add([]byte{}, int32(0))
	f.Fuzz(func(t *testing.T, b []byte, prev int32) {
		dst := memLog(t, nil)
		fol := NewFollower(dst, nil)
		last, err := fol.appendBatches(b, prev)
		if err == nil {
			err = dst.WaitShipped(last)
		}
		end, _ := dst.End()
		if err != nil {
			return
		}
		if end == 0 {
			t.Fatal("appended without error, and the log is empty")
		}
		if _, err := dst.Segment().Read(0, 1<<20, nil); err != nil {
			t.Fatalf("the log does not read back: %v", err)
		}
	})
}

// memLog is a replicated metadata log of epoch 1 on an in-memory file
// system, closed when the test ends.
func memLog(t testing.TB, fs *segmenttest.MemFS) *eventlog.Log {
	t.Helper()
	if fs == nil {
		fs = segmenttest.NewMemFS()
	}
	st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes, cfg.PreallocateBytes = 1<<20, 64<<10
	l, err := eventlog.Open(st, eventlog.Options{Replicated: true, Segment: &cfg, SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		st.Close()
	})
	return l
}
