package kafka

// Topic ids (KIP-516). Metadata v10+ tells each topic's id, and Fetch v13+
// and Produce v13+ name topics by id only, so that a consumer or producer
// of a topic that was deleted and made again under its name is told
// UNKNOWN_TOPIC_ID instead of reading or writing the new one. A created
// topic's id is in the metadata log. The internal topics are not created
// and have fixed ids, the same on every node: the metadata log the one
// Kafka gives its own (__cluster_metadata, 00000000-0000-0000-0000-000000000001),
// the others one derived from their names.

import (
	"crypto/sha256"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
)

// internalTopicIDs are the internal topics' ids, by name.
var internalTopicIDs = map[string]eventlog.UUID{
	eventlog.TopicName: {15: 1},
	group.Topic:        derivedTopicID(group.Topic),
	txn.Topic:          derivedTopicID(txn.Topic),
}

// derivedTopicID is a fixed id for the internal topic name: a version 8
// (custom) UUID of its SHA-256.
func derivedTopicID(name string) eventlog.UUID {
	sum := sha256.Sum256([]byte("chronik internal topic " + name))
	var id eventlog.UUID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// topicID returns the id of the topic name in s; zero if there is none.
func topicID(s *eventlog.State, name string) eventlog.UUID {
	if id, ok := internalTopicIDs[name]; ok {
		return id
	}
	if tp := s.Topics[name]; tp != nil {
		return tp.ID
	}
	return eventlog.UUID{}
}

// topicName returns the name of the topic whose id is id; false if no
// topic has it (never made, deleted, or the zero id). In a cluster, an id
// not known here is looked up again once the changes this node holds
// commit: a client told of a topic made a moment ago through another node
// may name it before its commit point came.
func (b *Broker) topicName(id eventlog.UUID) (name string, ok bool) {
	b.meta.View(func(s *eventlog.State) { name, ok = topicNameIn(s, id) })
	if !ok && id != (eventlog.UUID{}) && b.cfg.Cluster != nil {
		b.settle()
		b.meta.View(func(s *eventlog.State) { name, ok = topicNameIn(s, id) })
	}
	return name, ok
}

// topicNameIn is topicName in the state s.
func topicNameIn(s *eventlog.State, id eventlog.UUID) (string, bool) {
	if id == (eventlog.UUID{}) {
		return "", false
	}
	for name, iid := range internalTopicIDs {
		if iid == id {
			return name, true
		}
	}
	name, ok := s.TopicIDs[id]
	return name, ok
}
