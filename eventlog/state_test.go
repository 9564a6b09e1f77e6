package eventlog

import (
	"errors"
	"strings"
	"testing"
)

var (
	inc1 = UUID{1}
	inc2 = UUID{2}
	tid1 = UUID{0xa1}
	tid2 = UUID{0xa2}
)

func reg(id int32, inc UUID) *BrokerRegistered {
	return &BrokerRegistered{BrokerID: id, Incarnation: inc, Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9092 + id}}}
}

// base is a state with brokers 1 and 2 and topic "orders" (2 partitions,
// partition 0 on broker 1).
func base(t *testing.T) *State {
	t.Helper()
	s := NewState()
	must(t, Apply(s,
		&LeaderChanged{Term: 1, Leader: 1, Voters: []int32{1}},
		reg(1, inc1), reg(2, inc1),
		&TopicCreated{Name: "orders", TopicID: tid1, PartitionCount: 2, ReplicationFactor: 1, Configs: []ConfigEntry{{"retention.ms", "1000"}}},
		&PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 0},
	))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		events []Event
		refuse string // "" when the events apply
		check  func(t *testing.T, s *State)
	}{
		{name: "register broker", events: []Event{reg(3, inc1)}, check: func(t *testing.T, s *State) {
			if b := s.Brokers[3]; b == nil || b.Fenced || b.Endpoints[0].Port != 9095 {
				t.Fatalf("broker 3: %+v", b)
			}
		}},
		{name: "re-register with a new incarnation", events: []Event{reg(1, inc2)}},
		{name: "re-register with the same incarnation", events: []Event{reg(1, inc1)}, refuse: "already registered"},
		{name: "negative broker id", events: []Event{reg(-1, inc1)}, refuse: "negative"},
		{name: "fence", events: []Event{&BrokerFenced{BrokerID: 2}}, check: func(t *testing.T, s *State) {
			if !s.Brokers[2].Fenced {
				t.Fatal("not fenced")
			}
		}},
		{name: "fence twice", events: []Event{&BrokerFenced{BrokerID: 2}, &BrokerFenced{BrokerID: 2}}, refuse: "already fenced"},
		{name: "fence unknown", events: []Event{&BrokerFenced{BrokerID: 9}}, refuse: "not registered"},
		{name: "unfence", events: []Event{&BrokerFenced{BrokerID: 2}, &BrokerUnfenced{BrokerID: 2}}},
		{name: "unfence a live broker", events: []Event{&BrokerUnfenced{BrokerID: 2}}, refuse: "not fenced"},
		{name: "unregister", events: []Event{&BrokerUnregistered{BrokerID: 2}}, check: func(t *testing.T, s *State) {
			if s.Brokers[2] != nil {
				t.Fatal("still registered")
			}
		}},
		{name: "unregister a replica", events: []Event{&BrokerUnregistered{BrokerID: 1}}, refuse: "reassign its partitions first"},
		{name: "unregister unknown", events: []Event{&BrokerUnregistered{BrokerID: 7}}, refuse: "not registered"},
		{name: "create topic", events: []Event{&TopicCreated{Name: "logs", TopicID: tid2, PartitionCount: 3, ReplicationFactor: 1}}, check: func(t *testing.T, s *State) {
			tp := s.Topics["logs"]
			if tp == nil || len(tp.Partitions) != 3 || tp.Partitions[2].Leader != -1 || s.TopicIDs[tid2] != "logs" {
				t.Fatalf("topic: %+v", tp)
			}
		}},
		{name: "create an existing topic", events: []Event{&TopicCreated{Name: "orders", TopicID: tid2, PartitionCount: 1, ReplicationFactor: 1}}, refuse: "already exists"},
		{name: "create with a used id", events: []Event{&TopicCreated{Name: "logs", TopicID: tid1, PartitionCount: 1, ReplicationFactor: 1}}, refuse: "already used"},
		{name: "create with no partitions", events: []Event{&TopicCreated{Name: "logs", TopicID: tid2, ReplicationFactor: 1}}, refuse: "partition count 0"},
		{name: "create with replication factor 0", events: []Event{&TopicCreated{Name: "logs", TopicID: tid2, PartitionCount: 1}}, refuse: "replication factor 0"},
		{name: "create with a bad name", events: []Event{&TopicCreated{Name: "a/b", TopicID: tid2, PartitionCount: 1, ReplicationFactor: 1}}, refuse: "only ASCII letters"},
		{name: "assign partition", events: []Event{&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{2, 1}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 0}}, check: func(t *testing.T, s *State) {
			if p := s.Topics["orders"].Partitions[1]; p.Leader != 2 || len(p.Replicas) != 2 {
				t.Fatalf("partition: %+v", p)
			}
		}},
		{name: "add a partition", events: []Event{&PartitionChanged{Topic: "orders", Partition: 2, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}, check: func(t *testing.T, s *State) {
			if n := len(s.Topics["orders"].Partitions); n != 3 {
				t.Fatalf("%d partitions", n)
			}
		}},
		{name: "skip a partition", events: []Event{&PartitionChanged{Topic: "orders", Partition: 3, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}, refuse: "neither one of them nor the next"},
		{name: "partition of a deleted topic", events: []Event{&TopicDeleted{Name: "orders", TopicID: tid1}, &PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}}, refuse: "does not exist"},
		{name: "replica not a broker", events: []Event{&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{5}, ISR: []int32{5}, Leader: 5}}, refuse: "not a registered broker"},
		{name: "leader not in isr", events: []Event{&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 2}}, refuse: "not in the in-sync replicas"},
		{name: "isr not replicas", events: []Event{&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{1}, ISR: []int32{1, 2}, Leader: 1}}, refuse: "is not a replica"},
		{name: "duplicate replica", events: []Event{&PartitionChanged{Topic: "orders", Partition: 1, Replicas: []int32{1, 1}, ISR: []int32{1}, Leader: 1}}, refuse: "listed twice"},
		{name: "no replicas", events: []Event{&PartitionChanged{Topic: "orders", Partition: 1, Leader: -1}}, refuse: "no replicas"},
		{name: "older leader epoch", events: []Event{
			&PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 5},
			&PartitionChanged{Topic: "orders", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4},
		}, refuse: "older than 5"},
		{name: "delete topic", events: []Event{&TopicDeleted{Name: "orders", TopicID: tid1}}, check: func(t *testing.T, s *State) {
			if s.Topics["orders"] != nil || s.TopicIDs[tid1] != "" {
				t.Fatal("still there")
			}
		}},
		{name: "delete with the wrong id", events: []Event{&TopicDeleted{Name: "orders", TopicID: tid2}}, refuse: "has id"},
		{name: "delete unknown", events: []Event{&TopicDeleted{Name: "nope", TopicID: tid2}}, refuse: "does not exist"},
		{name: "set and delete topic config", events: []Event{
			&ConfigChanged{ResourceType: ResourceTopic, Resource: "orders", Name: "segment.bytes", Value: "4096"},
			&ConfigChanged{ResourceType: ResourceTopic, Resource: "orders", Name: "retention.ms", Delete: true},
		}, check: func(t *testing.T, s *State) {
			if c := s.Topics["orders"].Configs; len(c) != 1 || c["segment.bytes"] != "4096" {
				t.Fatalf("configs %v", c)
			}
		}},
		{name: "config of unknown topic", events: []Event{&ConfigChanged{ResourceType: ResourceTopic, Resource: "nope", Name: "a", Value: "b"}}, refuse: "does not exist"},
		{name: "broker config", events: []Event{&ConfigChanged{ResourceType: ResourceBroker, Resource: "1", Name: "log.retention.ms", Value: "5"}}, check: func(t *testing.T, s *State) {
			if s.BrokerConfigs["1"]["log.retention.ms"] != "5" {
				t.Fatal(s.BrokerConfigs)
			}
		}},
		{name: "bad broker config resource", events: []Event{&ConfigChanged{ResourceType: ResourceBroker, Resource: "x", Name: "a", Value: "b"}}, refuse: "neither a broker id"},
		{name: "bad resource type", events: []Event{&ConfigChanged{ResourceType: 9, Resource: "x", Name: "a"}}, refuse: "neither topic"},
		{name: "empty config name", events: []Event{&ConfigChanged{ResourceType: ResourceTopic, Resource: "orders"}}, refuse: "config name is empty"},
		{name: "producer ids", events: []Event{&ProducerIdsAllocated{BrokerID: 1, First: 0, Count: 1000}, &ProducerIdsAllocated{BrokerID: 2, First: 1000, Count: 1000}}, check: func(t *testing.T, s *State) {
			if s.NextProducerID != 2000 || s.ProducerBlocks[2].First != 1000 {
				t.Fatalf("next %d blocks %v", s.NextProducerID, s.ProducerBlocks)
			}
		}},
		{name: "overlapping producer ids", events: []Event{&ProducerIdsAllocated{BrokerID: 1, First: 0, Count: 1000}, &ProducerIdsAllocated{BrokerID: 2, First: 999, Count: 10}}, refuse: "below the next free id"},
		{name: "producer ids for unknown broker", events: []Event{&ProducerIdsAllocated{BrokerID: 9, First: 0, Count: 10}}, refuse: "not registered"},
		{name: "empty producer id block", events: []Event{&ProducerIdsAllocated{BrokerID: 1, First: 0}}, refuse: "block of 0"},
		{name: "new controller term", events: []Event{&LeaderChanged{Term: 2, Leader: 2, Voters: []int32{1, 2, 3}}}, check: func(t *testing.T, s *State) {
			if s.Controller.Term != 2 || s.Controller.Leader != 2 {
				t.Fatal(s.Controller)
			}
		}},
		{name: "older controller term", events: []Event{&LeaderChanged{Term: 0, Leader: 1, Voters: []int32{1}}}, refuse: "older than 1"},
		{name: "second leader in a term", events: []Event{&LeaderChanged{Term: 1, Leader: 2, Voters: []int32{1, 2}}}, refuse: "already has controller"},
		{name: "leader not a voter", events: []Event{&LeaderChanged{Term: 3, Leader: 4, Voters: []int32{1, 2}}}, refuse: "not one of the voters"},
		{name: "noop", events: []Event{&NoOp{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base(t)
			before := EncodeSnapshot(s, 0)
			err := Apply(s, tc.events...)
			if tc.refuse == "" {
				must(t, err)
				if tc.check != nil {
					tc.check(t, s)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("got %v, want a refusal with %q", err, tc.refuse)
			}
			if after := EncodeSnapshot(s, 0); string(after) != string(before) {
				t.Fatal("a refused group changed the state")
			}
		})
	}
}

func TestEncodeDecodeEveryType(t *testing.T) {
	events := []Event{
		reg(1, inc1), &BrokerFenced{BrokerID: 1}, &BrokerUnfenced{BrokerID: 1}, &BrokerUnregistered{BrokerID: 1},
		&TopicCreated{Name: "t", TopicID: tid1, PartitionCount: 3, ReplicationFactor: 2, Configs: []ConfigEntry{{"a", "b"}}},
		&PartitionChanged{Topic: "t", Partition: 2, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 7},
		&TopicDeleted{Name: "t", TopicID: tid1},
		&ConfigChanged{ResourceType: ResourceTopic, Resource: "t", Name: "k", Value: "v"},
		&ConfigChanged{ResourceType: ResourceBroker, Resource: "", Name: "k", Delete: true},
		&ProducerIdsAllocated{BrokerID: 1, First: 1 << 40, Count: 1000},
		&LeaderChanged{Term: 9, Leader: 3, Voters: []int32{1, 2, 3}},
		&NoOp{},
	}
	if len(events) < len(typeNames) {
		t.Fatalf("test covers %d events, there are %d types", len(events), len(typeNames))
	}
	for _, e := range events {
		got, err := Decode(Encode(e))
		must(t, err)
		if string(Encode(got)) != string(Encode(e)) || got.Type() != e.Type() {
			t.Errorf("%s did not round-trip: %+v", e.Type(), got)
		}
	}
}

func TestDecodeRefusesUnknown(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty", nil, "bad unsigned varint"},
		{"frame version", []byte{1, 1, 0}, "unknown frame version 1"},
		{"event type", []byte{0, 99, 0}, "unknown event type 99"},
		{"event version", []byte{0, byte(TypeNoOp), 1}, "NoOp version 1 is unknown"},
		{"trailing bytes", []byte{0, byte(TypeNoOp), 0, 5}, "1 bytes after the payload"},
		{"truncated", Encode(reg(1, inc1))[:10], "truncated UUID"},
		{"huge list", []byte{0, byte(TypeLeaderChanged), 0, 2, 2, 0xff, 0xff, 0xff, 0x0f}, "exceeds the 0 bytes left"},
	}
	for _, tc := range tests {
		_, err := Decode(tc.value)
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
