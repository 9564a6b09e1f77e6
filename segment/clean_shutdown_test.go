package segment_test

import (
	"testing"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

const (
	cleanMark    = "/data/clean-shutdown"
	firstSegment = "/data/orders-0/00000000000000000000.log"
)

// plantPastEnd writes a byte into the preallocated zeros at the end of the
// first segment, durably, as a torn write past the log's end would leave it.
func plantPastEnd(t *testing.T, fs *segmenttest.MemFS) int {
	t.Helper()
	data, err := fs.ReadFile(firstSegment)
	if err != nil || len(data) < 200 || data[len(data)-100] != 0 {
		t.Fatalf("segment: %d bytes, %v", len(data), err)
	}
	pos := len(data) - 100
	data[pos] = 0xff
	fs.WriteFile(firstSegment, data)
	return pos
}

// TestCleanShutdownIsTrusted: a store closed cleanly leaves the mark; the
// next open takes it away, durably, and the logs opened then trust their
// recovery points instead of reading what lies past them (a byte planted
// there stays). After a crash, a log reads its tail again and zeroes what
// follows its last batch.
func TestCleanShutdownIsTrusted(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(1, "a"))
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.ReadFile(cleanMark); err != nil {
		t.Fatalf("no clean-shutdown mark after a clean stop: %v", err)
	}
	pos := plantPastEnd(t, e.fs)
	e.open()
	if _, err := e.fs.ReadFile(cleanMark); err == nil {
		t.Fatal("the clean-shutdown mark is still there once the store is open")
	}
	if data, _ := e.fs.ReadFile(firstSegment); data[pos] != 0xff {
		t.Fatal("after a clean stop the log read past its recovery point")
	}
	if e.log.EndOffset() != 1 {
		t.Fatalf("end %d, want 1", e.log.EndOffset())
	}

	// A crash: the mark was removed durably at the open, so the next open
	// does not trust the recovery point.
	e.fs = e.fs.Crash(nil)
	e.open()
	if data, _ := e.fs.ReadFile(firstSegment); data[pos] != 0 {
		t.Fatal("after a crash the byte past the log's end was not zeroed")
	}
	if e.log.EndOffset() != 1 {
		t.Fatalf("end %d after the crash, want 1", e.log.EndOffset())
	}
	e.append(segmenttest.Values(1, "b"))
}

// TestFailedLogLeavesNoCleanMark: a store whose log failed does not mark
// its stop clean.
func TestFailedLogLeavesNoCleanMark(t *testing.T) {
	e := newEnv(t, smallConfig())
	e.append(segmenttest.Values(1, "a"))
	e.fs.FailSyncs(2) // the batch's sync, and the one after zeroing it
	if a, err := e.log.Append(segmenttest.Values(1, "b"), 7, 1); err == nil && a.Wait() == nil {
		t.Fatal("append with failing syncs succeeded")
	}
	e.store.Close()
	if _, err := e.fs.ReadFile(cleanMark); err == nil {
		t.Fatal("a store with a failed log marked its stop clean")
	}
}
