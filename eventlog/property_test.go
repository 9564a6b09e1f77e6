package eventlog

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// genEvent draws an event that is likely, but not certain, to apply to s:
// ids and names come mostly from what s holds.
func genEvent(t *rapid.T, s *State) Event {
	brokerID := func() int32 {
		if len(s.Brokers) > 0 && rapid.Bool().Draw(t, "known broker") {
			ids := make([]int32, 0, len(s.Brokers))
			for id := range s.Brokers {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			return rapid.SampledFrom(ids).Draw(t, "broker")
		}
		return rapid.Int32Range(0, 5).Draw(t, "broker id")
	}
	topic := func() string {
		if len(s.Topics) > 0 && rapid.Bool().Draw(t, "known topic") {
			return rapid.SampledFrom(sortedKeys(s.Topics)).Draw(t, "topic")
		}
		return fmt.Sprintf("t%d", rapid.IntRange(0, 6).Draw(t, "topic n"))
	}
	brokers := func() []int32 {
		var ids []int32
		for id := range s.Brokers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if len(ids) == 0 {
			return []int32{0}
		}
		n := rapid.IntRange(1, len(ids)).Draw(t, "replicas")
		return rapid.Permutation(ids).Draw(t, "perm")[:n]
	}
	switch rapid.IntRange(0, 10).Draw(t, "kind") {
	case 0:
		return &BrokerRegistered{BrokerID: brokerID(), Incarnation: UUID{byte(rapid.IntRange(0, 3).Draw(t, "inc"))}, Endpoints: []Endpoint{{"PLAINTEXT", "h", 9092}}, Rack: rapid.SampledFrom([]string{"", "r1"}).Draw(t, "rack")}
	case 1:
		return &BrokerFenced{BrokerID: brokerID()}
	case 2:
		return &BrokerUnfenced{BrokerID: brokerID()}
	case 3:
		return &BrokerUnregistered{BrokerID: brokerID()}
	case 4:
		name := topic()
		e := &TopicCreated{Name: name, TopicID: UUID{byte(rapid.IntRange(1, 40).Draw(t, "tid"))}, PartitionCount: rapid.Int32Range(1, 3).Draw(t, "parts"), ReplicationFactor: 1}
		if rapid.Bool().Draw(t, "configs") {
			e.Configs = []ConfigEntry{{"retention.ms", "100"}, {"cleanup.policy", "delete"}}
		}
		return e
	case 5:
		name := topic()
		n := int32(0)
		if tp := s.Topics[name]; tp != nil {
			n = int32(len(tp.Partitions))
		}
		reps := brokers()
		isr := reps[:rapid.IntRange(1, len(reps)).Draw(t, "isr")]
		epoch := int32(0)
		p := rapid.Int32Range(0, n).Draw(t, "partition")
		if tp := s.Topics[name]; tp != nil && int(p) < len(tp.Partitions) {
			epoch = tp.Partitions[p].LeaderEpoch + rapid.Int32Range(0, 1).Draw(t, "bump")
		}
		return &PartitionChanged{Topic: name, Partition: p, Replicas: reps, ISR: isr, Leader: isr[0], LeaderEpoch: epoch}
	case 6:
		name := topic()
		id := UUID{}
		if tp := s.Topics[name]; tp != nil {
			id = tp.ID
		}
		return &TopicDeleted{Name: name, TopicID: id}
	case 7:
		if rapid.Bool().Draw(t, "topic config") {
			return &ConfigChanged{ResourceType: ResourceTopic, Resource: topic(), Name: rapid.SampledFrom([]string{"a", "b"}).Draw(t, "k"), Value: "v", Delete: rapid.Bool().Draw(t, "del")}
		}
		return &ConfigChanged{ResourceType: ResourceBroker, Resource: rapid.SampledFrom([]string{"", "1"}).Draw(t, "res"), Name: "k", Value: rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "v"), Delete: rapid.Bool().Draw(t, "del")}
	case 8:
		return &ProducerIdsAllocated{BrokerID: brokerID(), First: s.NextProducerID + rapid.Int64Range(0, 5).Draw(t, "gap"), Count: rapid.Int32Range(1, 1000).Draw(t, "count")}
	case 9:
		term := s.Controller.Term + rapid.Int64Range(0, 2).Draw(t, "term step")
		voters := []int32{1, 2, 3}
		return &LeaderChanged{Term: term, Leader: rapid.SampledFrom(voters).Draw(t, "leader"), Voters: voters}
	}
	return &NoOp{}
}

// genLog draws a log of batches that all apply in order, as a controller
// would write it, with the state after each batch.
func genLog(t *rapid.T) [][]Event {
	s := NewState()
	var batches [][]Event
	n := rapid.IntRange(1, 80).Draw(t, "batches")
	for range n {
		var group []Event
		for range rapid.IntRange(1, 3).Draw(t, "group") {
			group = append(group, genEvent(t, s))
		}
		if err := Apply(s, group...); err != nil {
			continue // refused: the controller would not have written it
		}
		batches = append(batches, group)
	}
	return batches
}

func applyBatches(t *rapid.T, s *State, batches [][]Event) {
	for _, b := range batches {
		if err := Apply(s, b...); err != nil {
			t.Fatalf("replay: %v", err)
		}
		s.Offset += int64(len(b))
	}
}

// TestSnapshotThenReplayEqualsReplay: for random logs, replaying the whole
// log and loading a snapshot taken after any batch, then replaying the
// rest, give identical state.
func TestSnapshotThenReplayEqualsReplay(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		batches := genLog(t)
		full := NewState()
		applyBatches(t, full, batches)

		cut := rapid.IntRange(0, len(batches)).Draw(t, "cut")
		head := NewState()
		applyBatches(t, head, batches[:cut])
		loaded, epoch, err := DecodeSnapshot(EncodeSnapshot(head, 7))
		if err != nil {
			t.Fatalf("snapshot after %d batches: %v", cut, err)
		}
		if epoch != 7 {
			t.Fatalf("epoch %d", epoch)
		}
		applyBatches(t, loaded, batches[cut:])
		if a, b := EncodeSnapshot(full, 0), EncodeSnapshot(loaded, 0); string(a) != string(b) {
			t.Fatalf("state from snapshot at %d + replay differs from full replay", cut)
		}
		if full.NextProducerID != loaded.NextProducerID || full.Offset != loaded.Offset {
			t.Fatalf("scalars differ: %d/%d vs %d/%d", full.NextProducerID, full.Offset, loaded.NextProducerID, loaded.Offset)
		}
	})
}
