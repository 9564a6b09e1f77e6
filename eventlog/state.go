package eventlog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// ErrRefused is wrapped by every error of an event that does not apply.
var ErrRefused = errors.New("eventlog: event does not apply")

// MaxTopicPartitions bounds the partition count a topic is created with,
// far above what one request may create (a batch holds fewer
// PartitionChanged events), so that a damaged event cannot make the state
// allocate without a limit.
const MaxTopicPartitions = 1 << 20

// Broker is a registered broker.
type Broker struct {
	ID          int32      `json:"id"`
	Incarnation UUID       `json:"incarnation"`
	Endpoints   []Endpoint `json:"endpoints"`
	Rack        string     `json:"rack,omitempty"`
	Fenced      bool       `json:"fenced"`
}

// Partition is one partition's assignment.
type Partition struct {
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
}

// Topic is a topic and its partitions.
type Topic struct {
	Name              string            `json:"name"`
	ID                UUID              `json:"id"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
	Partitions        []Partition       `json:"partitions"`
}

// ProducerBlock is the block of producer ids last given to a broker.
type ProducerBlock struct {
	First int64 `json:"first"`
	Count int32 `json:"count"`
}

// Controller is the controller's term, the controller and the voters.
type Controller struct {
	Term   int64   `json:"term"`
	Leader int32   `json:"leader"`
	Voters []int32 `json:"voters"`
}

// State is the cluster metadata: the replay of the event log up to Offset.
// Entities in it are never changed in place (Apply replaces them), so a
// pointer read under the owner's lock stays valid after it is released.
type State struct {
	// Offset is the offset of the next event to apply: every event below it
	// has been applied.
	Offset         int64                        `json:"offset"`
	Brokers        map[int32]*Broker            `json:"brokers"`
	Topics         map[string]*Topic            `json:"topics"`
	TopicIDs       map[UUID]string              `json:"-"`
	BrokerConfigs  map[string]map[string]string `json:"broker_configs,omitempty"`
	NextProducerID int64                        `json:"next_producer_id"`
	ProducerBlocks map[int32]ProducerBlock      `json:"producer_blocks,omitempty"`
	Controller     Controller                   `json:"controller"`
}

// NewState returns the empty state, before the first event.
func NewState() *State {
	return &State{
		Brokers:        map[int32]*Broker{},
		Topics:         map[string]*Topic{},
		TopicIDs:       map[UUID]string{},
		BrokerConfigs:  map[string]map[string]string{},
		ProducerBlocks: map[int32]ProducerBlock{},
		Controller:     Controller{Leader: -1},
	}
}

// Clone returns a copy of s that shares its (immutable) entities.
func (s *State) Clone() *State {
	c := *s
	c.Brokers = maps.Clone(s.Brokers)
	c.Topics = maps.Clone(s.Topics)
	c.TopicIDs = maps.Clone(s.TopicIDs)
	c.BrokerConfigs = maps.Clone(s.BrokerConfigs)
	c.ProducerBlocks = maps.Clone(s.ProducerBlocks)
	return &c
}

// tx applies events to a State, recording how to undo each change. A
// replay tx (owned) records nothing and may change entities in place and
// keep the events' slices: nobody else sees the state or the events yet,
// and an event that does not apply fails the whole replay.
type tx struct {
	s     *State
	undo  []func()
	owned bool
	// made are the topics this tx put in the state with partitions of
	// their own (new, or copied with their partitions): nobody else holds
	// those partitions until it ends (readers wait for it), so its later
	// events change them in place, and a topic of many partitions is not
	// copied once per partition. (A topic copied for its configs shares
	// its partitions with the one it replaces.) The last one made is kept
	// apart: most txs make one, and need no map.
	lastMade *Topic
	made     map[*Topic]bool
}

func (t *tx) noteMade(tp *Topic) {
	if t.lastMade != nil {
		if t.made == nil {
			t.made = map[*Topic]bool{}
		}
		t.made[t.lastMade] = true
	}
	t.lastMade = tp
}

func (t *tx) madeHere(tp *Topic) bool {
	return tp == t.lastMade || t.made[tp]
}

func (t *tx) record(f func()) {
	if !t.owned {
		t.undo = append(t.undo, f)
	}
}

// clone copies a slice an event holds, unless the tx owns the events.
func clone32(t *tx, v []int32) []int32 {
	if t.owned {
		return v
	}
	return slices.Clone(v)
}

func (t *tx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = t.undo[:0]
}

func (t *tx) putBroker(b *Broker) {
	old, had := t.s.Brokers[b.ID]
	t.s.Brokers[b.ID] = b
	t.record(func() {
		if had {
			t.s.Brokers[b.ID] = old
		} else {
			delete(t.s.Brokers, b.ID)
		}
	})
}

func (t *tx) deleteBroker(id int32) {
	old := t.s.Brokers[id]
	blk, hadBlk := t.s.ProducerBlocks[id]
	delete(t.s.Brokers, id)
	delete(t.s.ProducerBlocks, id)
	t.record(func() {
		t.s.Brokers[id] = old
		if hadBlk {
			t.s.ProducerBlocks[id] = blk
		}
	})
}

func (t *tx) putTopic(tp *Topic) {
	old, had := t.s.Topics[tp.Name]
	t.s.Topics[tp.Name] = tp
	t.s.TopicIDs[tp.ID] = tp.Name
	t.record(func() {
		if had {
			t.s.Topics[tp.Name] = old
		} else {
			delete(t.s.Topics, tp.Name)
			delete(t.s.TopicIDs, tp.ID)
		}
	})
}

func (t *tx) deleteTopic(tp *Topic) {
	delete(t.s.Topics, tp.Name)
	delete(t.s.TopicIDs, tp.ID)
	t.record(func() {
		t.s.Topics[tp.Name] = tp
		t.s.TopicIDs[tp.ID] = tp.Name
	})
}

func (t *tx) putBrokerConfigs(name string, cfg map[string]string) {
	old, had := t.s.BrokerConfigs[name]
	if len(cfg) == 0 {
		delete(t.s.BrokerConfigs, name)
	} else {
		t.s.BrokerConfigs[name] = cfg
	}
	t.record(func() {
		if had {
			t.s.BrokerConfigs[name] = old
		} else {
			delete(t.s.BrokerConfigs, name)
		}
	})
}

func (t *tx) setProducerIDs(broker int32, blk ProducerBlock, next int64) {
	oldBlk, had := t.s.ProducerBlocks[broker]
	oldNext := t.s.NextProducerID
	t.s.ProducerBlocks[broker] = blk
	t.s.NextProducerID = next
	t.record(func() {
		t.s.NextProducerID = oldNext
		if had {
			t.s.ProducerBlocks[broker] = oldBlk
		} else {
			delete(t.s.ProducerBlocks, broker)
		}
	})
}

func (t *tx) setController(c Controller) {
	old := t.s.Controller
	t.s.Controller = c
	t.record(func() { t.s.Controller = old })
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRefused}, args...)...)
}

// Apply applies events to s in order, all or nothing: if one does not
// apply, s is left as it was and the error says which and why. It does no
// I/O and depends on nothing but s and the events.
func Apply(s *State, events ...Event) error {
	t := tx{s: s}
	for i, e := range events {
		if err := t.apply(e); err != nil {
			t.rollback()
			if len(events) > 1 {
				return fmt.Errorf("event %d of %d (%s): %w", i+1, len(events), e.Type(), err)
			}
			return fmt.Errorf("%s: %w", e.Type(), err)
		}
	}
	return nil
}

// applyOwned applies events that nobody else holds to a state that nobody
// else sees yet (replay, snapshot loading). It does not undo: on an error
// the state is unusable.
func applyOwned(s *State, events ...Event) error {
	t := tx{s: s, owned: true}
	for i, e := range events {
		if err := t.apply(e); err != nil {
			return fmt.Errorf("event %d of %d (%s): %w", i+1, len(events), e.Type(), err)
		}
	}
	return nil
}

func (t *tx) apply(ev Event) error {
	s := t.s
	switch e := ev.(type) {
	case *BrokerRegistered:
		if e.BrokerID < 0 {
			return refuse("broker id %d is negative", e.BrokerID)
		}
		if old, ok := s.Brokers[e.BrokerID]; ok && old.Incarnation == e.Incarnation {
			return refuse("broker %d is already registered with incarnation %s", e.BrokerID, e.Incarnation)
		}
		t.putBroker(&Broker{ID: e.BrokerID, Incarnation: e.Incarnation, Endpoints: slices.Clone(e.Endpoints), Rack: e.Rack})
	case *BrokerFenced:
		b, ok := s.Brokers[e.BrokerID]
		switch {
		case !ok:
			return refuse("broker %d is not registered", e.BrokerID)
		case b.Fenced:
			return refuse("broker %d is already fenced", e.BrokerID)
		}
		nb := *b
		nb.Fenced = true
		t.putBroker(&nb)
	case *BrokerUnfenced:
		b, ok := s.Brokers[e.BrokerID]
		switch {
		case !ok:
			return refuse("broker %d is not registered", e.BrokerID)
		case !b.Fenced:
			return refuse("broker %d is not fenced", e.BrokerID)
		}
		nb := *b
		nb.Fenced = false
		t.putBroker(&nb)
	case *BrokerUnregistered:
		if _, ok := s.Brokers[e.BrokerID]; !ok {
			return refuse("broker %d is not registered", e.BrokerID)
		}
		for _, tp := range s.Topics {
			for i, p := range tp.Partitions {
				if slices.Contains(p.Replicas, e.BrokerID) {
					return refuse("broker %d is a replica of %s-%d: reassign its partitions first", e.BrokerID, tp.Name, i)
				}
			}
		}
		t.deleteBroker(e.BrokerID)
	case *TopicCreated:
		if err := ValidTopicName(e.Name); err != nil {
			return refuse("%v", err)
		}
		if _, ok := s.Topics[e.Name]; ok {
			return refuse("topic %q already exists", e.Name)
		}
		if name, ok := s.TopicIDs[e.TopicID]; ok {
			return refuse("topic id %s is already used by topic %q", e.TopicID, name)
		}
		if e.PartitionCount < 1 || e.PartitionCount > MaxTopicPartitions {
			return refuse("topic %q: partition count %d must be between 1 and %d", e.Name, e.PartitionCount, MaxTopicPartitions)
		}
		if e.ReplicationFactor < 1 {
			return refuse("topic %q: replication factor %d must be at least 1", e.Name, e.ReplicationFactor)
		}
		tp := &Topic{Name: e.Name, ID: e.TopicID, ReplicationFactor: e.ReplicationFactor, Partitions: make([]Partition, e.PartitionCount)}
		for i := range tp.Partitions {
			tp.Partitions[i].Leader = -1
		}
		if len(e.Configs) > 0 {
			tp.Configs = make(map[string]string, len(e.Configs))
			for _, c := range e.Configs {
				tp.Configs[c.Key] = c.Value
			}
		}
		t.putTopic(tp)
		t.noteMade(tp)
	case *PartitionChanged:
		tp, ok := s.Topics[e.Topic]
		if !ok {
			return refuse("topic %q does not exist", e.Topic)
		}
		if e.Partition < 0 || int(e.Partition) > len(tp.Partitions) {
			return refuse("topic %q has %d partitions: partition %d is neither one of them nor the next", e.Topic, len(tp.Partitions), e.Partition)
		}
		if err := checkAssignment(s, e); err != nil {
			return err
		}
		if int(e.Partition) < len(tp.Partitions) && e.LeaderEpoch < tp.Partitions[e.Partition].LeaderEpoch {
			return refuse("%s-%d: leader epoch %d is older than %d", e.Topic, e.Partition, e.LeaderEpoch, tp.Partitions[e.Partition].LeaderEpoch)
		}
		p := Partition{Replicas: clone32(t, e.Replicas), ISR: clone32(t, e.ISR), Leader: e.Leader, LeaderEpoch: e.LeaderEpoch}
		if t.owned || t.madeHere(tp) {
			if int(e.Partition) == len(tp.Partitions) {
				tp.Partitions = append(tp.Partitions, p)
			} else {
				tp.Partitions[e.Partition] = p
			}
			break
		}
		nt := *tp
		nt.Partitions = slices.Clone(tp.Partitions)
		if int(e.Partition) == len(nt.Partitions) {
			nt.Partitions = append(nt.Partitions, p)
		} else {
			nt.Partitions[e.Partition] = p
		}
		t.putTopic(&nt)
		t.noteMade(&nt)
	case *TopicDeleted:
		tp, ok := s.Topics[e.Name]
		switch {
		case !ok:
			return refuse("topic %q does not exist", e.Name)
		case tp.ID != e.TopicID:
			return refuse("topic %q has id %s, not %s", e.Name, tp.ID, e.TopicID)
		}
		t.deleteTopic(tp)
	case *ConfigChanged:
		if e.Name == "" {
			return refuse("config name is empty")
		}
		switch e.ResourceType {
		case ResourceTopic:
			tp, ok := s.Topics[e.Resource]
			if !ok {
				return refuse("topic %q does not exist", e.Resource)
			}
			nt := *tp
			nt.Configs = changeConfig(tp.Configs, e)
			t.putTopic(&nt)
		case ResourceBroker:
			if e.Resource != "" {
				if _, err := strconv.ParseInt(e.Resource, 10, 32); err != nil {
					return refuse("broker config resource %q is neither a broker id nor empty (cluster default)", e.Resource)
				}
			}
			t.putBrokerConfigs(e.Resource, changeConfig(s.BrokerConfigs[e.Resource], e))
		default:
			return refuse("config resource type %d is neither topic (2) nor broker (4)", e.ResourceType)
		}
	case *ProducerIdsAllocated:
		switch {
		case s.Brokers[e.BrokerID] == nil:
			return refuse("broker %d is not registered", e.BrokerID)
		case e.Count < 1:
			return refuse("producer id block of %d ids", e.Count)
		case e.First < s.NextProducerID:
			return refuse("producer id block starts at %d, below the next free id %d", e.First, s.NextProducerID)
		}
		t.setProducerIDs(e.BrokerID, ProducerBlock{First: e.First, Count: e.Count}, e.First+int64(e.Count))
	case *LeaderChanged:
		switch {
		case e.Term < s.Controller.Term:
			return refuse("controller term %d is older than %d", e.Term, s.Controller.Term)
		case e.Term == s.Controller.Term && e.Leader != s.Controller.Leader && s.Controller.Leader >= 0:
			return refuse("term %d already has controller %d", e.Term, s.Controller.Leader)
		case e.Leader >= 0 && !slices.Contains(e.Voters, e.Leader):
			return refuse("controller %d is not one of the voters %v", e.Leader, e.Voters)
		}
		t.setController(Controller{Term: e.Term, Leader: e.Leader, Voters: clone32(t, e.Voters)})
	case *NoOp:
	default:
		return refuse("unknown event %T", ev)
	}
	return nil
}

func checkAssignment(s *State, e *PartitionChanged) error {
	name := fmt.Sprintf("%s-%d", e.Topic, e.Partition)
	if len(e.Replicas) == 0 {
		return refuse("%s: no replicas", name)
	}
	for i, r := range e.Replicas {
		if s.Brokers[r] == nil {
			return refuse("%s: replica %d is not a registered broker", name, r)
		}
		if slices.Contains(e.Replicas[:i], r) {
			return refuse("%s: replica %d is listed twice", name, r)
		}
	}
	for i, r := range e.ISR {
		if !slices.Contains(e.Replicas, r) {
			return refuse("%s: in-sync replica %d is not a replica", name, r)
		}
		if slices.Contains(e.ISR[:i], r) {
			return refuse("%s: in-sync replica %d is listed twice", name, r)
		}
	}
	if e.Leader != -1 && !slices.Contains(e.ISR, e.Leader) {
		return refuse("%s: leader %d is not in the in-sync replicas %v", name, e.Leader, e.ISR)
	}
	if e.LeaderEpoch < 0 {
		return refuse("%s: negative leader epoch %d", name, e.LeaderEpoch)
	}
	return nil
}

func changeConfig(old map[string]string, e *ConfigChanged) map[string]string {
	m := make(map[string]string, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if e.Delete {
		delete(m, e.Name)
	} else {
		m[e.Name] = e.Value
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// ValidTopicName applies Kafka's rules: 1 to 249 characters of ASCII
// letters, digits, '.', '_' and '-', and not "." or "..".
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters long, the limit is 249", len(name))
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has %q: only ASCII letters, digits, '.', '_' and '-' are allowed", name, c)
		}
	}
	return nil
}
