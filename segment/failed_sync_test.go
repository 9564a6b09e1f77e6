package segment_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestAFailedZeroingSyncLosesNoAcknowledgedAppend: the background
// preparation's sync of the zeros it writes ahead of the writer also
// writes back appends not synced yet. When it fails, Linux may mark those
// pages clean without their being on disk, and reports the failure once to
// each open handle: had the preparation synced through the appends'
// handle, the committer's next sync would succeed and acknowledge appends
// a crash then loses. Each trial holds both syncs, fails one of them
// (whichever comes first), and checks that every acknowledged append
// survives a crash.
func TestAFailedZeroingSyncLosesNoAcknowledgedAppend(t *testing.T) {
	const trials = 20
	dropped := 0
	for trial := range trials {
		e := zeroingEnv(t, 256<<10)
		batch := segmenttest.Sized(1, 2<<10)
		e.append(batch)

		release := e.fs.HoldSyncs()
		start := e.fs.Written()
		var pending []*segment.Appended
		var data int64
		// Twenty batches stay within the first allocation step (64 KiB)
		// and pass its middle, where the next step is prepared.
		for range 20 {
			a, err := e.log.Append(batch, 7, 1)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, a)
			data += int64(len(batch))
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.fs.Written()-start <= data {
			if time.Now().After(deadline) {
				t.Fatalf("trial %d: no zeros were written ahead of %d bytes of appends", trial, data)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond) // the zeros' sync waits too
		e.fs.FailSyncs(1)
		release()

		if ackedSurviveACrash(t, e, trial, pending) == 1 {
			dropped++
		}
	}
	t.Logf("%d of %d trials failed the appends' sync", dropped, trials)
}

// TestOverlappingSyncsShareAFailure: two sync rounds of one log overlap
// and one of their fsyncs fails. Linux tells only the first to ask, and
// the pages it lost may be the other one's: the other must not
// acknowledge its appends on its own success. Each trial holds both
// syncs, fails whichever comes first, and checks that every acknowledged
// append survives a crash.
func TestOverlappingSyncsShareAFailure(t *testing.T) {
	const trials = 20
	for trial := range trials {
		e := newEnv(t, smallConfig())
		e.fs.FailedSyncsLoseWrites()
		batch := segmenttest.Values(1, "v")
		e.append(batch)

		release := e.fs.HoldSyncs()
		var pending []*segment.Appended
		for held := 1; held <= 2; held++ {
			a, err := e.log.Append(batch, 7, 1)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, a)
			for deadline := time.Now().Add(10 * time.Second); e.fs.HeldSyncs() < held; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("trial %d: %d syncs in flight, want %d", trial, e.fs.HeldSyncs(), held)
				}
			}
		}
		e.fs.FailSyncs(1)
		release()

		ackedSurviveACrash(t, e, trial, pending)
	}
}

// zeroingEnv is a log of 1 MiB segments that zeroes each allocation step
// of prealloc bytes ahead of the writer, on a file system that loses what
// a failed sync did not make durable.
func zeroingEnv(t *testing.T, prealloc int64) *env {
	t.Helper()
	cfg := smallConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.PreallocateBytes = prealloc
	cfg.Prezero = true
	e := newEnv(t, cfg)
	e.fs.FailedSyncsLoseWrites()
	return e
}

// ackedSurviveACrash waits for the pending appends (which follow one
// acknowledged append), crashes the file system and reopens the log:
// every acknowledged append must be there. It returns how many were.
func ackedSurviveACrash(t *testing.T, e *env, trial int, pending []*segment.Appended) int {
	t.Helper()
	acked := 1
	for _, a := range pending {
		if a.Wait() == nil {
			acked++
		}
	}
	e.store.Close()
	e.fs = e.fs.Crash(nil)
	e.open()
	if got := len(e.readAll(0)); got < acked {
		t.Fatalf("trial %d: %d appends were acknowledged, %d survived a crash", trial, acked, got)
	}
	e.store.Close()
	return acked
}

// TestAppendAtLearnsOfADrop: a writer appends a few batches and waits for
// the last alone (one sync covers those before it), as the metadata log
// does. A failed sync drops every write not yet durable and later appends
// take their offsets: a batch appended after the drop landed where an
// earlier one of its group was meant to be, its sync succeeded, and the
// writer went on believing the whole group durable at the offsets it
// counted (a follower's metadata log then held its batches one place off,
// and the node could not start again). AppendAt refuses to write anywhere
// but where the writer says the log ends; every group whose last batch
// was acknowledged survives a crash whole, at its offsets.
func TestAppendAtLearnsOfADrop(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	moved := 0
	for trial := range 300 {
		e := zeroingEnv(t, 64<<10)
		batch := segmenttest.Values(1, "v")
		failAfter := time.Duration(rng.IntN(2000)) * time.Microsecond
		fs := e.fs
		fail := time.AfterFunc(failAfter, func() { fs.FailSyncs(1) })
		// Each batch holds one record: the n-th batch written belongs at
		// offset n.
		written, acked := 0, 0
	groups:
		for range 200 {
			var last *segment.Appended
			for range 1 + rng.IntN(3) {
				a, err := e.log.AppendAt(batch, 7, -1, int64(written))
				if errors.Is(err, segment.ErrEndMoved) {
					moved++
				}
				if err != nil {
					break groups
				}
				written++
				last = a
			}
			if last.Wait() != nil {
				break
			}
			acked = written
		}
		fail.Stop()
		e.store.Close()
		e.fs = e.fs.Crash(nil)
		e.open()
		got := e.readAll(0)
		if len(got) < acked {
			t.Fatalf("trial %d: %d batches were acknowledged, %d survived a crash", trial, acked, len(got))
		}
		e.store.Close()
	}
	t.Logf("%d of 300 trials found the log's end moved by a drop", moved)
}

// TestAppendAfterRefusesWhereADroppedBatchWas: a batch whose sync failed
// is dropped and the log ends before it again; AppendAfter, bounded by
// that batch's end, writes nothing, and an append bounded by where the
// log does end goes on.
func TestAppendAfterRefusesWhereADroppedBatchWas(t *testing.T) {
	e := newEnv(t, smallConfig())
	batch := segmenttest.Values(1, "v")
	e.append(batch)
	release := e.fs.HoldSyncs()
	defer release()
	a, err := e.log.Append(batch, 7, -1)
	if err != nil {
		t.Fatal(err)
	}
	e.fs.FailSyncs(1)
	release()
	if a.Wait() == nil {
		t.Fatal("the held sync did not fail")
	}
	if _, err := e.log.AppendAfter(batch, 7, -1, a.Last+1); !errors.Is(err, segment.ErrEndMoved) {
		t.Fatalf("appended after a dropped batch: %v", err)
	}
	if end := e.log.EndOffset(); end != 1 {
		t.Fatalf("log ends at %d, want 1", end)
	}
	b, err := e.log.AppendAfter(batch, 7, -1, 1)
	if err != nil || b.Wait() != nil || b.Base != 1 {
		t.Fatalf("append after the durable batch: %v", err)
	}
}
