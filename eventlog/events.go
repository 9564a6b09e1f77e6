package eventlog

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
)

// UUID is a 16-byte identifier (topic ids, broker incarnations).
type UUID [16]byte

// NewUUID returns a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// MarshalText prints the UUID in its usual form (for JSON).
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// Type identifies an event's kind. Part of the on-disk format: never
// renumber, only add.
type Type uint64

// Event types.
const (
	TypeBrokerRegistered     Type = 1
	TypeBrokerFenced         Type = 2
	TypeBrokerUnfenced       Type = 3
	TypeBrokerUnregistered   Type = 4
	TypeTopicCreated         Type = 5
	TypePartitionChanged     Type = 6
	TypeTopicDeleted         Type = 7
	TypeConfigChanged        Type = 8
	TypeProducerIdsAllocated Type = 9
	TypeLeaderChanged        Type = 10
	TypeNoOp                 Type = 11
)

var typeNames = map[Type]string{
	TypeBrokerRegistered:     "BrokerRegistered",
	TypeBrokerFenced:         "BrokerFenced",
	TypeBrokerUnfenced:       "BrokerUnfenced",
	TypeBrokerUnregistered:   "BrokerUnregistered",
	TypeTopicCreated:         "TopicCreated",
	TypePartitionChanged:     "PartitionChanged",
	TypeTopicDeleted:         "TopicDeleted",
	TypeConfigChanged:        "ConfigChanged",
	TypeProducerIdsAllocated: "ProducerIdsAllocated",
	TypeLeaderChanged:        "LeaderChanged",
	TypeNoOp:                 "NoOp",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "Type(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// ParseType returns the type with the given name (as String prints it).
func ParseType(name string) (Type, bool) {
	for t, n := range typeNames {
		if n == name {
			return t, true
		}
	}
	return 0, false
}

// Event is one metadata change. Each is one Kafka record in
// __chronik_metadata-0: key = Key(), value = Encode().
type Event interface {
	// Type is the event's kind.
	Type() Type
	// Key is the entity the event is about: "topic/<name>", "broker/<id>",
	// "config/<type>/<name>", "producer-ids", "controller" or "" (NoOp).
	Key() string
	// encode appends the payload of the current version.
	encode(e *encoder)
}

// Endpoint is one listener of a broker.
type Endpoint struct {
	Listener string `json:"listener"`
	Host     string `json:"host"`
	Port     int32  `json:"port"`
}

// ConfigEntry is one configuration key and value.
type ConfigEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Resource types of ConfigChanged, Kafka's numbering.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// BrokerRegistered: a broker joined (or rejoined with a new incarnation).
type BrokerRegistered struct {
	BrokerID    int32      `json:"broker_id"`
	Incarnation UUID       `json:"incarnation"`
	Endpoints   []Endpoint `json:"endpoints"`
	Rack        string     `json:"rack,omitempty"`
}

// BrokerFenced: a broker may no longer lead or serve partitions.
type BrokerFenced struct {
	BrokerID int32 `json:"broker_id"`
}

// BrokerUnfenced: a fenced broker is back.
type BrokerUnfenced struct {
	BrokerID int32 `json:"broker_id"`
}

// BrokerUnregistered: a broker left the cluster for good.
type BrokerUnregistered struct {
	BrokerID int32 `json:"broker_id"`
}

// TopicCreated: a topic exists, with PartitionCount partitions whose
// replicas and leaders PartitionChanged events set.
type TopicCreated struct {
	Name              string        `json:"name"`
	TopicID           UUID          `json:"topic_id"`
	PartitionCount    int32         `json:"partitions"`
	ReplicationFactor int16         `json:"replication_factor"`
	Configs           []ConfigEntry `json:"configs,omitempty"`
}

// PartitionChanged sets a partition's replicas, in-sync replicas, leader
// and leader epoch. Partition == the topic's partition count adds one.
type PartitionChanged struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
}

// TopicDeleted: a topic and its partitions are gone.
type TopicDeleted struct {
	Name    string `json:"name"`
	TopicID UUID   `json:"topic_id"`
}

// ConfigChanged sets (or, with Delete, removes) one configuration key of a
// topic or broker.
type ConfigChanged struct {
	ResourceType int8   `json:"resource_type"`
	Resource     string `json:"resource"`
	Name         string `json:"name"`
	Value        string `json:"value,omitempty"`
	Delete       bool   `json:"delete,omitempty"`
}

// ProducerIdsAllocated hands the producer ids [First, First+Count) to a
// broker for InitProducerId.
type ProducerIdsAllocated struct {
	BrokerID int32 `json:"broker_id"`
	First    int64 `json:"first"`
	Count    int32 `json:"count"`
}

// LeaderChanged records the controller term, the controller and the voters.
type LeaderChanged struct {
	Term   int64   `json:"term"`
	Leader int32   `json:"leader"`
	Voters []int32 `json:"voters"`
}

// NoOp changes nothing; a new controller writes one to commit its term.
type NoOp struct{}

func brokerKey(id int32) string { return "broker/" + strconv.FormatInt(int64(id), 10) }

func (e *BrokerRegistered) Type() Type     { return TypeBrokerRegistered }
func (e *BrokerFenced) Type() Type         { return TypeBrokerFenced }
func (e *BrokerUnfenced) Type() Type       { return TypeBrokerUnfenced }
func (e *BrokerUnregistered) Type() Type   { return TypeBrokerUnregistered }
func (e *TopicCreated) Type() Type         { return TypeTopicCreated }
func (e *PartitionChanged) Type() Type     { return TypePartitionChanged }
func (e *TopicDeleted) Type() Type         { return TypeTopicDeleted }
func (e *ConfigChanged) Type() Type        { return TypeConfigChanged }
func (e *ProducerIdsAllocated) Type() Type { return TypeProducerIdsAllocated }
func (e *LeaderChanged) Type() Type        { return TypeLeaderChanged }
func (e *NoOp) Type() Type                 { return TypeNoOp }

func (e *BrokerRegistered) Key() string     { return brokerKey(e.BrokerID) }
func (e *BrokerFenced) Key() string         { return brokerKey(e.BrokerID) }
func (e *BrokerUnfenced) Key() string       { return brokerKey(e.BrokerID) }
func (e *BrokerUnregistered) Key() string   { return brokerKey(e.BrokerID) }
func (e *TopicCreated) Key() string         { return "topic/" + e.Name }
func (e *PartitionChanged) Key() string     { return "topic/" + e.Topic }
func (e *TopicDeleted) Key() string         { return "topic/" + e.Name }
func (e *ProducerIdsAllocated) Key() string { return "producer-ids" }
func (e *LeaderChanged) Key() string        { return "controller" }
func (e *NoOp) Key() string                 { return "" }
func (e *ConfigChanged) Key() string {
	kind := "broker"
	if e.ResourceType == ResourceTopic {
		kind = "topic"
	}
	return "config/" + kind + "/" + e.Resource
}

// Payload encodings, version 0 of every type (part of the on-disk format).

func (e *BrokerRegistered) encode(w *encoder) {
	w.varint(int64(e.BrokerID))
	w.uuid(e.Incarnation)
	w.uvarint(uint64(len(e.Endpoints)))
	for _, ep := range e.Endpoints {
		w.str(ep.Listener)
		w.str(ep.Host)
		w.varint(int64(ep.Port))
	}
	w.str(e.Rack)
}

func (e *BrokerFenced) encode(w *encoder)       { w.varint(int64(e.BrokerID)) }
func (e *BrokerUnfenced) encode(w *encoder)     { w.varint(int64(e.BrokerID)) }
func (e *BrokerUnregistered) encode(w *encoder) { w.varint(int64(e.BrokerID)) }

func (e *TopicCreated) encode(w *encoder) {
	w.str(e.Name)
	w.uuid(e.TopicID)
	w.varint(int64(e.PartitionCount))
	w.varint(int64(e.ReplicationFactor))
	w.uvarint(uint64(len(e.Configs)))
	for _, c := range e.Configs {
		w.str(c.Key)
		w.str(c.Value)
	}
}

func (e *PartitionChanged) encode(w *encoder) {
	w.str(e.Topic)
	w.varint(int64(e.Partition))
	w.int32s(e.Replicas)
	w.int32s(e.ISR)
	w.varint(int64(e.Leader))
	w.varint(int64(e.LeaderEpoch))
}

func (e *TopicDeleted) encode(w *encoder) {
	w.str(e.Name)
	w.uuid(e.TopicID)
}

func (e *ConfigChanged) encode(w *encoder) {
	w.varint(int64(e.ResourceType))
	w.str(e.Resource)
	w.str(e.Name)
	w.str(e.Value)
	w.boolean(e.Delete)
}

func (e *ProducerIdsAllocated) encode(w *encoder) {
	w.varint(int64(e.BrokerID))
	w.varint(e.First)
	w.varint(int64(e.Count))
}

func (e *LeaderChanged) encode(w *encoder) {
	w.varint(e.Term)
	w.varint(int64(e.Leader))
	w.int32s(e.Voters)
}

func (e *NoOp) encode(*encoder) {}

// decodePayload decodes version 0 of type t.
func decodePayload(t Type, d *decoder) Event {
	switch t {
	case TypeBrokerRegistered:
		e := &BrokerRegistered{BrokerID: d.int32(), Incarnation: d.uuid()}
		n := d.length(3)
		for range n {
			e.Endpoints = append(e.Endpoints, Endpoint{Listener: d.str(), Host: d.str(), Port: d.int32()})
		}
		e.Rack = d.str()
		return e
	case TypeBrokerFenced:
		return &BrokerFenced{BrokerID: d.int32()}
	case TypeBrokerUnfenced:
		return &BrokerUnfenced{BrokerID: d.int32()}
	case TypeBrokerUnregistered:
		return &BrokerUnregistered{BrokerID: d.int32()}
	case TypeTopicCreated:
		e := &TopicCreated{Name: d.str(), TopicID: d.uuid(), PartitionCount: d.int32(), ReplicationFactor: d.int16()}
		n := d.length(2)
		for range n {
			e.Configs = append(e.Configs, ConfigEntry{Key: d.str(), Value: d.str()})
		}
		return e
	case TypePartitionChanged:
		return &PartitionChanged{Topic: d.str(), Partition: d.int32(), Replicas: d.int32s(), ISR: d.int32s(), Leader: d.int32(), LeaderEpoch: d.int32()}
	case TypeTopicDeleted:
		return &TopicDeleted{Name: d.str(), TopicID: d.uuid()}
	case TypeConfigChanged:
		return &ConfigChanged{ResourceType: d.int8(), Resource: d.str(), Name: d.str(), Value: d.str(), Delete: d.boolean()}
	case TypeProducerIdsAllocated:
		return &ProducerIdsAllocated{BrokerID: d.int32(), First: d.varint(), Count: d.int32()}
	case TypeLeaderChanged:
		return &LeaderChanged{Term: d.varint(), Leader: d.int32(), Voters: d.int32s()}
	case TypeNoOp:
		return &NoOp{}
	}
	return nil
}

// Frame (part of the on-disk format): a record's value is
//
//	frame version uvarint (0) | event type uvarint | event version uvarint (0) | payload
const (
	frameVersion = 0
	eventVersion = 0
)

// Encode returns the record value of an event.
func Encode(e Event) []byte {
	w := encoder{b: make([]byte, 0, 64)}
	w.uvarint(frameVersion)
	w.uvarint(uint64(e.Type()))
	w.uvarint(eventVersion)
	e.encode(&w)
	return w.b
}

// Decode decodes a record value. An unknown frame version, event type or
// event version is an error, never a skip.
func Decode(value []byte) (Event, error) {
	d := decoder{b: value}
	fv := d.uvarint()
	t := Type(d.uvarint())
	v := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if fv != frameVersion {
		return nil, fmt.Errorf("%w: unknown frame version %d", ErrDecode, fv)
	}
	if _, ok := typeNames[t]; !ok {
		return nil, fmt.Errorf("%w: unknown event type %d (written by a newer chronik?)", ErrDecode, uint64(t))
	}
	if v != eventVersion {
		return nil, fmt.Errorf("%w: %s version %d is unknown (written by a newer chronik?)", ErrDecode, t, v)
	}
	e := decodePayload(t, &d)
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return e, nil
}
