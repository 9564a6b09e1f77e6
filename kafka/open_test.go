package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestSlowOpenDoesNotStallOtherPartitions: while one partition takes long
// to open, a partition already open is served at once, and the requests
// that need the slow one share its single open.
func TestSlowOpenDoesNotStallOtherPartitions(t *testing.T) {
	fsys := segmenttest.NewStallingFS("/slow-0")
	b := memBroker(t, fsys)
	t.Cleanup(fsys.Free) // before the store closes, which waits for opens
	for _, name := range []string{"fast", "slow"} {
		// Small segments: the in-memory file system backs a mapping with
		// real memory.
		if _, err := b.createTopic(name, 1, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}); err != nil {
			t.Fatal(err)
		}
	}
	fast, code := b.openPartition("fast", 0)
	if code != 0 {
		t.Fatalf("open fast: code %d", code)
	}

	type result struct {
		part *partition
		code int16
	}
	slow := make(chan result, 2)
	for range 2 {
		go func() {
			part, code := b.openPartition("slow", 0)
			slow <- result{part, code}
		}()
	}
	<-fsys.Stalled()

	served := make(chan *partition, 1)
	go func() {
		part, _ := b.openPartition("fast", 0)
		served <- part
	}()
	select {
	case part := <-served:
		if part != fast {
			t.Fatal("the open partition came back as another one")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a partition already open waited for another partition's open")
	}

	fsys.Free()
	r1, r2 := <-slow, <-slow
	if r1.code != 0 || r2.code != 0 || r1.part == nil || r1.part != r2.part {
		t.Fatalf("concurrent opens of one partition: %+v and %+v, want one shared partition", r1, r2)
	}
	// What was opened is kept: the next request finds it.
	if part, _ := b.openPartition("slow", 0); part != r1.part {
		t.Fatal("the opened partition was not kept")
	}
}

// TestCreateLeavesAnExistingTopicsFilesAlone: a create of a name that
// exists by the time it clears leftover files (two creates of one name
// passing validation together) must not delete the first one's records;
// it is refused.
func TestCreateLeavesAnExistingTopicsFilesAlone(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	small := []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}
	if _, err := b.createTopic("t", 1, small); err != nil {
		t.Fatal(err)
	}
	part, code := b.openPartition("t", 0)
	if code != 0 {
		t.Fatalf("open: code %d", code)
	}
	r := &appendReq{records: segmenttest.Values(1, "acknowledged"), acks: -1}
	part.appender.submit(part, r)
	<-r.done
	if r.code != 0 || r.a.Wait() != nil {
		t.Fatalf("append: code %d", r.code)
	}

	// The second create, past validation: it must be refused and leave
	// the records where they are.
	if _, err := b.createTopics([]topicSpec{{"t", 1, small}}); !errors.Is(err, eventlog.ErrRefused) {
		t.Fatalf("second create of t: %v, want it refused", err)
	}
	again, code := b.openPartition("t", 0)
	if code != 0 {
		t.Fatalf("open after the refused create: code %d", code)
	}
	if hw := again.log.HighWatermark(); hw != 1 {
		t.Fatalf("t-0 ends at %d after the refused create, want its 1 record", hw)
	}
}

// TestOpenDuringADropThatKeepsThePartition: a request that waited for a
// drop which then left the partition alone opens it, instead of being
// told the partition does not exist.
func TestOpenDuringADropThatKeepsThePartition(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if _, err := b.createTopic("t", 1, []eventlog.ConfigEntry{{Key: "segment.bytes", Value: "1048576"}}); err != nil {
		t.Fatal(err)
	}
	asked, release := make(chan struct{}), make(chan struct{})
	dropped := make(chan error, 1)
	go func() {
		dropped <- b.drop("t", 0, func() bool { close(asked); <-release; return false })
	}()
	<-asked
	type result struct {
		part *partition
		code int16
	}
	opened := make(chan result, 1)
	go func() {
		part, code := b.openPartition("t", 0)
		opened <- result{part, code}
	}()
	select {
	case r := <-opened:
		t.Fatalf("the open did not wait for the drop (%+v)", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-dropped; err != nil {
		t.Fatal(err)
	}
	if r := <-opened; r.code != 0 || r.part == nil {
		t.Fatalf("open after a drop that kept the partition: %+v", r)
	}
}
