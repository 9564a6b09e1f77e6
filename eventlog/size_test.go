package eventlog

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chronik-stream/chronik/segment"
)

// bigTopic is a topic of parts partitions whose events take about
// parts × 570 bytes as records: the longest names Kafka allows.
func bigTopic(prefix string, parts int32) []Event {
	name := prefix + strings.Repeat("x", 249-len(prefix))
	return createTopic(name, parts)
}

func metaSegment() *segment.Config {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = DefaultSegmentBytes
	cfg.RetentionMs = -1
	return &cfg
}

// TestChangeTooLargeIsRefused: a change larger than one batch may hold is
// ErrTooLarge and leaves nothing behind; the largest that fits is written
// in one batch, and so is one that compresses little, which a reopen
// replays.
func TestChangeTooLargeIsRefused(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1, Segment: metaSegment()})
	e.append(reg(1, inc1))
	huge := bigTopic("huge", 60_000)
	if _, err := e.log.Append(huge...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("append of %d events: %v, want ErrTooLarge", len(huge), err)
	}
	if _, err := e.log.EncodeBatch(huge...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("EncodeBatch of %d events: %v, want ErrTooLarge", len(huge), err)
	}
	end := e.log.Offset()
	if end != 1 {
		t.Fatalf("log ends at %d after the refused change, want 1", end)
	}

	big := bigTopic("big", 40_000)
	if size := recordsSize(eventRecords(big)); size < maxBatchRecords*3/4 || size > maxBatchRecords {
		t.Fatalf("the test's largest change is %d bytes, want close to %d", size, maxBatchRecords)
	}
	e.append(big...)
	// 10,000 topics of random names of the longest length, one request's
	// worth: a batch that compresses little, far over a data partition's
	// max.message.bytes.
	var random []Event
	for range 10_000 {
		b := make([]byte, 125)
		rand.Read(b)
		random = append(random, createTopic(hex.EncodeToString(b)[:249], 1)...)
	}
	e.append(random...)
	e.reopen()
	var parts int
	e.log.View(func(s *State) {
		for _, tp := range s.Topics {
			parts += len(tp.Partitions)
		}
	})
	if parts != 50_000 {
		t.Fatalf("%d partitions after reopen, want 50000", parts)
	}
}

// TestConcurrentLargeChangesSplitIntoBatches: changes queued while a batch
// is written go into the next batches, each within the bound readers
// decode, never all into one: every batch replays.
func TestConcurrentLargeChangesSplitIntoBatches(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1, Segment: metaSegment()})
	e.append(reg(1, inc1))
	const writers, parts = 16, 10_000 // 16 × 5.7 MB: beyond maxDecodedBatch together
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			if _, err := e.log.Append(bigTopic(fmt.Sprintf("w%02d-", w), parts)...); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var batches int
	for off := int64(0); off < e.log.Offset(); batches++ {
		b, err := e.log.Segment().Read(off, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := segment.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := decodeBatch(b[:h.Size()]); err != nil {
			t.Fatalf("batch at %d: %v", off, err)
		}
		off = h.LastOffset() + 1
	}
	if batches < writers/4 {
		t.Fatalf("%d batches for %d changes of %d events", batches, writers, parts+1)
	}
	e.reopen()
	var topics int
	e.log.View(func(s *State) { topics = len(s.Topics) })
	if topics != writers {
		t.Fatalf("%d topics after reopen, want %d", topics, writers)
	}
}

// TestTopicPartitionCountIsBounded: a TopicCreated beyond
// MaxTopicPartitions does not apply (and allocates nothing for it).
func TestTopicPartitionCountIsBounded(t *testing.T) {
	s := NewState()
	Apply(s, reg(1, inc1))
	for _, n := range []int32{0, MaxTopicPartitions + 1, 1<<31 - 1} {
		err := Apply(s, &TopicCreated{Name: "t", TopicID: NewUUID(), PartitionCount: n, ReplicationFactor: 1})
		if !errors.Is(err, ErrRefused) {
			t.Errorf("TopicCreated with %d partitions: %v, want refused", n, err)
		}
	}
}

// TestChangeNeverEditsWhatReadersHold: a change that copies a topic for
// its configs and then moves one of its partitions, in one group, leaves
// the topic readers got before as it was, and so does a group undone
// after such edits; a topic it created or copied with its partitions it
// edits in place.
func TestChangeNeverEditsWhatReadersHold(t *testing.T) {
	s := NewState()
	if err := Apply(s, reg(1, inc1), reg(2, inc2)); err != nil {
		t.Fatal(err)
	}
	if err := Apply(s, createTopic("t", 3)...); err != nil {
		t.Fatal(err)
	}
	held := s.Topics["t"]
	move := &PartitionChanged{Topic: "t", Partition: 1, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 1}
	grow := &PartitionChanged{Topic: "t", Partition: 3, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2}
	cfg := &ConfigChanged{ResourceType: ResourceTopic, Resource: "t", Name: "retention.ms", Value: "1000"}

	// Undone: the state's topic is the one readers hold, unchanged.
	bad := &PartitionChanged{Topic: "t", Partition: 9, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}
	if err := Apply(s, cfg, move, grow, bad); !errors.Is(err, ErrRefused) {
		t.Fatalf("a group ending in a partition that does not exist: %v", err)
	}
	if s.Topics["t"] != held || held.Partitions[1].Leader != 1 || len(held.Partitions) != 3 {
		t.Fatalf("after an undone group: topic %p (held %p), partition 1 led by %d, %d partitions", s.Topics["t"], held, held.Partitions[1].Leader, len(held.Partitions))
	}

	if err := Apply(s, cfg, move, grow); err != nil {
		t.Fatal(err)
	}
	if held.Partitions[1].Leader != 1 || len(held.Partitions) != 3 || held.Configs["retention.ms"] != "" {
		t.Fatalf("the topic readers held changed: partition 1 led by %d, %d partitions, configs %v", held.Partitions[1].Leader, len(held.Partitions), held.Configs)
	}
	now := s.Topics["t"]
	if now.Partitions[1].Leader != 2 || len(now.Partitions) != 4 || now.Configs["retention.ms"] != "1000" {
		t.Fatalf("the new topic: partition 1 led by %d, %d partitions, configs %v", now.Partitions[1].Leader, len(now.Partitions), now.Configs)
	}
}
