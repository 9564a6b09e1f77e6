package eventlog

import (
	"bytes"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	segmenttest.Golden(t, name, got, *update)
}

// metadataFixture writes a metadata log with every event type on the real
// file system, with a fixed clock and ids, and a snapshot in the middle.
func metadataFixture(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	st, err := segment.OpenStore(data, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	l, err := Open(st, Options{Epoch: 1, SnapshotBytes: -1, Segment: testSegment(), Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	steps := [][]Event{
		{&LeaderChanged{Term: 1, Leader: 1, Voters: []int32{1}}, &NoOp{}},
		{reg(1, inc1)},
		{reg(2, inc2)},
		{&ProducerIdsAllocated{BrokerID: 1, First: 0, Count: 1000}},
		{&TopicCreated{Name: "orders", TopicID: tid1, PartitionCount: 2, ReplicationFactor: 1, Configs: []ConfigEntry{{"retention.ms", "86400000"}}},
			&PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
			&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2}},
		{&ConfigChanged{ResourceType: ResourceBroker, Resource: "", Name: "log.retention.ms", Value: "3600000"}},
	}
	for _, s := range steps {
		if _, err := l.Append(s...); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	l.SetEpoch(2)
	for _, s := range [][]Event{
		{&BrokerFenced{BrokerID: 2}},
		{&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{2, 1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}},
		{&ConfigChanged{ResourceType: ResourceTopic, Resource: "orders", Name: "segment.bytes", Value: "1048576"}},
		{&TopicCreated{Name: "logs", TopicID: tid2, PartitionCount: 1, ReplicationFactor: 1}},
		{&TopicDeleted{Name: "logs", TopicID: tid2}},
	} {
		if _, err := l.Append(s...); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	st.Close()
	return data
}

func TestDumpAndStateGolden(t *testing.T) {
	data := metadataFixture(t)
	dir := filepath.Join(data, "__chronik_metadata-0")
	clean := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(data), []byte("<data>")) }
	for _, tc := range []struct {
		name string
		path string
		opts DumpOptions
	}{
		{"events.txt", dir, DumpOptions{To: -1}},
		{"events.jsonl", dir, DumpOptions{JSON: true, To: -1}},
		{"events-topics.txt", dir, DumpOptions{To: -1, Types: []Type{TypeTopicCreated, TypeTopicDeleted}}},
		{"events-from-to.txt", dir, DumpOptions{From: 4, To: 9}},
		{"snapshot.txt", filepath.Join(dir, SnapshotName(9, 1)), DumpOptions{To: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := DumpLog(&out, tc.path, tc.opts)
			if err != nil || len(res.Damage) > 0 {
				t.Fatalf("dump: %v %+v", err, res.Damage)
			}
			golden(t, tc.name, clean(out.Bytes()))
		})
	}
	s, damage, err := ReplayDir(data, nil)
	if err != nil || len(damage) > 0 {
		t.Fatalf("replay: %v %+v", err, damage)
	}
	for _, asJSON := range []bool{false, true} {
		var out bytes.Buffer
		if err := PrintState(&out, s, asJSON); err != nil {
			t.Fatal(err)
		}
		name := "state.txt"
		if asJSON {
			name = "state.json"
		}
		golden(t, name, out.Bytes())
	}
}
