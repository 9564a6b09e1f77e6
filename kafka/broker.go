package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment"
)

// Config is what a single broker needs to know about itself.
type Config struct {
	// NodeID is the broker id.
	NodeID int32
	// Host and Port are what clients are told to connect to.
	Host string
	Port int32
	// AutoCreateTopics creates a topic a Metadata request names when it
	// does not exist (auto.create.topics.enable).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of
	// CreateTopics asking for -1 (num.partitions).
	DefaultPartitions int32
	// ClusterID is reported in Metadata responses, unless the metadata
	// holds the cluster's (ClusterIDConfig, which a cluster's first
	// controller sets).
	ClusterID string
	// Groups configures the group coordinator; zero session timeout bounds
	// are Kafka's defaults.
	Groups group.Config
	// ProducerIDExpiration is how long an idempotent producer's state is
	// kept after its last write (producer.id.expiration.ms); 0 is
	// DefaultProducerIDExpiration.
	ProducerIDExpiration time.Duration
	// TransactionalIDExpiration is how long a transactional id with no
	// open transaction is kept after its last change
	// (transactional.id.expiration.ms); 0 is txn.DefaultIDExpiration.
	TransactionalIDExpiration time.Duration
	// TransactionMaxTimeout bounds the transaction timeouts producers ask
	// for (transaction.max.timeout.ms); 0 is txn.DefaultMaxTimeout.
	TransactionMaxTimeout time.Duration
	// Cluster, when set, makes the broker one member of a cluster: metadata
	// goes through the controller, which registers the brokers.
	Cluster Cluster
}

// Broker serves Kafka requests on one node: partitions in the segment
// store, metadata in the event log. It is its own controller: every
// metadata change is an event appended (and synced) before it is answered.
type Broker struct {
	cfg   Config
	store *segment.Store
	meta  *eventlog.Log
	log   *slog.Logger

	// mu guards parts and opening, and is never held across I/O: opening
	// a partition (recovery, producer state) must not stall the traffic of
	// the partitions already open.
	mu      sync.Mutex
	parts   map[string]*partition // by <topic>-<partition>
	opening map[string]*openCall  // partitions being opened, by the same key

	pids   producerIDs
	groups *group.Coordinator
	txns   *txn.Coordinator // serves while this node coordinates transactions (txnCoordinator)
	peers  peers

	sessions *fetchSessions

	closing   chan struct{} // closed when the server stops: long polls end
	closeOnce sync.Once
}

// stopWaits ends the requests that wait for something other than the disk:
// long-poll fetches return what they have, joins and syncs are answered.
func (b *Broker) stopWaits() {
	b.closeOnce.Do(func() { close(b.closing) })
	b.groups.Close()
	if b.txns != nil {
		b.txns.Close()
	}
	b.closePeers()
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// partition is an open partition and its idempotent-producer state.
type partition struct {
	log       *segment.Log
	producers *producers
	appender  appender
	topic     string
	p         int32
	topicID   eventlog.UUID
	// verifyTxn says whether a transactional batch may open its producer's
	// transaction here (txn.Coordinator.Verify); nil refuses them all.
	verifyTxn func(pid int64, epoch int16, topic string, p int32) bool
	// epoch is the partition's leader epoch as the metadata has it
	// (raiseEpoch): produced batches are stamped with it.
	epoch atomic.Int32
	// fixedEpoch: an internal partition, whose epoch requests do not check.
	fixedEpoch bool
}

// NewBroker registers the node in the metadata log (on its first start, or
// when its address changed) and returns the broker.
func NewBroker(cfg Config, store *segment.Store, meta *eventlog.Log, log *slog.Logger) (*Broker, error) {
	b := &Broker{cfg: cfg, store: store, meta: meta, log: log, parts: map[string]*partition{}, opening: map[string]*openCall{}, closing: make(chan struct{}),
		sessions: newFetchSessions()}
	if cfg.Cluster != nil {
		// The controller registers the brokers and sets the epoch.
		if err := b.openGroups(); err != nil {
			return nil, err
		}
		if err := b.openTxns(); err != nil {
			return nil, err
		}
		go b.sweepLoop()
		return b, nil
	}
	var events []eventlog.Event
	meta.View(func(s *eventlog.State) {
		if s.Controller.Leader != cfg.NodeID {
			events = append(events, &eventlog.LeaderChanged{Term: s.Controller.Term + 1, Leader: cfg.NodeID, Voters: []int32{cfg.NodeID}})
		}
		ep := eventlog.Endpoint{Listener: "PLAINTEXT", Host: cfg.Host, Port: cfg.Port}
		if old := s.Brokers[cfg.NodeID]; old == nil || len(old.Endpoints) != 1 || old.Endpoints[0] != ep {
			events = append(events, &eventlog.BrokerRegistered{BrokerID: cfg.NodeID, Incarnation: eventlog.NewUUID(), Endpoints: []eventlog.Endpoint{ep}})
		}
	})
	if len(events) > 0 {
		if _, err := meta.Append(events...); err != nil {
			return nil, fmt.Errorf("kafka: register broker %d: %w", cfg.NodeID, err)
		}
	}
	// Metadata batches carry the controller's term as their leader epoch.
	var term int64
	meta.View(func(s *eventlog.State) { term = s.Controller.Term })
	meta.SetEpoch(int32(term))
	if err := b.openGroups(); err != nil {
		return nil, err
	}
	if err := b.openTxns(); err != nil {
		return nil, err
	}
	go b.sweepLoop()
	return b, nil
}

// openGroups opens the offsets partition and replays it into the group
// coordinator.
func (b *Broker) openGroups() error {
	cfg := b.cfg.Groups
	def := group.DefaultConfig()
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = def.MinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = def.MaxSessionTimeout
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = b.log
	}
	if b.cfg.Cluster != nil {
		cfg.IsCoordinator = func() bool { id, _ := b.coordinator(); return id == b.cfg.NodeID }
	}
	cfg.PartitionExists = b.partitionExists
	cfg.InTransaction = func(pid int64, epoch int16) bool {
		return b.txns != nil && b.txns.Verify(pid, epoch, group.Topic, 0)
	}
	// Kafka's offsets.topic.segment.bytes: 100 MiB. No retention: a
	// group's last commit may be years old; the partition is compacted
	// instead (group.Coordinator.Compact).
	scfg := segment.DefaultConfig()
	scfg.SegmentBytes = 100 << 20
	scfg.RetentionMs = -1
	l, err := b.store.Open(group.Topic, 0, scfg)
	if err != nil {
		return fmt.Errorf("kafka: open %s-0: %w", group.Topic, err)
	}
	b.groups, err = group.Open(l, cfg)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// openTxns opens the transaction state partition and replays it into the
// transaction coordinator.
func (b *Broker) openTxns() error {
	scfg := segment.DefaultConfig()
	scfg.SegmentBytes = 100 << 20
	scfg.RetentionMs = -1
	l, err := b.store.Open(txn.Topic, 0, scfg)
	if err != nil {
		return fmt.Errorf("kafka: open %s-0: %w", txn.Topic, err)
	}
	b.txns, err = txn.Open(l, txn.Config{
		MaxTimeout:      b.cfg.TransactionMaxTimeout,
		NewProducerID:   b.txnProducerID,
		WriteMarker:     b.endTxnIn,
		PartitionExists: b.partitionExists,
		OffsetsTopic:    group.Topic,
		Logger:          b.log,
	})
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// endTxnIn writes a transaction's marker to one of its partitions: the
// offsets partition's goes through the group coordinator, which commits
// or drops the transaction's offsets with it.
func (b *Broker) endTxnIn(topic string, p int32, pid int64, epoch int16, commit bool) error {
	if topic == group.Topic {
		return b.groups.EndTxn(pid, epoch, commit)
	}
	if leader := b.leaderOf(topic, p); b.cfg.Cluster != nil && leader != b.cfg.NodeID && leader != -2 {
		return b.remoteMarker(leader, topic, p, pid, epoch, commit)
	}
	return b.writeMarker(topic, p, pid, epoch, commit)
}

// leaderOf is a partition's leader as the metadata says, -1 for none, -2
// for a partition the metadata does not have.
func (b *Broker) leaderOf(topic string, p int32) int32 {
	leader := int32(-2)
	b.meta.View(func(s *eventlog.State) {
		if t := s.Topics[topic]; t != nil && p >= 0 && int(p) < len(t.Partitions) {
			leader = t.Partitions[p].Leader
		}
	})
	return leader
}

// partitionExists reports whether the metadata has the topic partition.
func (b *Broker) partitionExists(topic string, p int32) bool {
	exists := false
	b.meta.View(func(s *eventlog.State) {
		t := s.Topics[topic]
		exists = t != nil && p >= 0 && int(p) < len(t.Partitions)
	})
	return exists
}

// coordinator is the broker that coordinates the groups and holds their
// offsets: this node alone, or in a cluster the registered broker with the
// lowest id (a fixed place while offsets are not replicated: when it is
// fenced, groups wait for it). ok is false when it is fenced or unknown.
func (b *Broker) coordinator() (id int32, br *eventlog.Broker) {
	if b.cfg.Cluster == nil {
		b.meta.View(func(s *eventlog.State) { br = s.Brokers[b.cfg.NodeID] })
		return b.cfg.NodeID, br
	}
	b.meta.View(func(s *eventlog.State) {
		for bid, x := range s.Brokers {
			if br == nil || bid < id {
				id, br = bid, x
			}
		}
	})
	return id, br
}

// internalTopic reports whether a topic is one of the broker's own: the
// metadata log, the offsets and the transactions' state. Clients may read
// them, nothing else.
func internalTopic(name string) bool {
	return name == eventlog.TopicName || name == group.Topic || name == txn.Topic
}

// OpenPartitions opens (and so recovers) every partition this node leads,
// and returns how many opened.
func (b *Broker) OpenPartitions() (int, error) {
	type tp struct {
		topic string
		p     int32
	}
	var todo []tp
	b.meta.View(func(s *eventlog.State) {
		for name, t := range s.Topics {
			for i, p := range t.Partitions {
				if p.Leader == b.cfg.NodeID {
					todo = append(todo, tp{name, int32(i)})
				}
			}
		}
	})
	opened := 0
	for _, x := range todo {
		// A partition that cannot open (corruption) is logged by partition
		// and answered with an error; the others are served.
		if _, code := b.partition(x.topic, x.p); code == 0 {
			opened++
		}
	}
	return opened, nil
}

// topicConfig is the segment configuration of a topic: defaults, then the
// topic's configs.
func topicConfig(configs map[string]string) (segment.Config, error) {
	cfg := segment.DefaultConfig()
	for k, v := range configs {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && k != "cleanup.policy" {
			return cfg, fmt.Errorf("config %s=%q is not a number", k, v)
		}
		switch k {
		case "retention.ms":
			cfg.RetentionMs = time.Duration(n) * time.Millisecond
		case "retention.bytes":
			cfg.RetentionBytes = n
		case "segment.bytes":
			cfg.SegmentBytes = n
		case "segment.ms":
			cfg.SegmentMs = time.Duration(n) * time.Millisecond
		case "max.message.bytes":
			cfg.MaxMessageBytes = int(n)
		case "cleanup.policy":
			if v != "delete" {
				return cfg, fmt.Errorf("cleanup.policy=%q is not supported: only delete", v)
			}
		default:
			return cfg, fmt.Errorf("config %s is not supported", k)
		}
	}
	return cfg, cfg.Validate()
}

// partition returns the log of a topic partition the metadata knows. The
// metadata log itself is partition 0 of __chronik_metadata, readable by any
// consumer (Produce refuses it).
func (b *Broker) partition(topic string, p int32) (*segment.Log, int16) {
	part, code := b.openPartition(topic, p)
	if part == nil {
		return nil, code
	}
	return part.log, 0
}

// openPartition returns an open partition, opening (and recovering) it and
// rebuilding its producer state on first use.
func (b *Broker) openPartition(topic string, p int32) (*partition, int16) {
	switch topic {
	case eventlog.TopicName:
		if p != eventlog.PartitionID {
			return nil, kerr.UnknownTopicOrPartition.Code
		}
		part := &partition{log: b.meta.Segment(), fixedEpoch: true}
		b.meta.View(func(s *eventlog.State) { part.epoch.Store(int32(s.Controller.Term)) })
		return part, 0
	case group.Topic:
		if p != 0 {
			return nil, kerr.UnknownTopicOrPartition.Code
		}
		return &partition{log: b.groups.Log(), fixedEpoch: true}, 0
	case txn.Topic:
		if p != 0 || b.txns == nil {
			return nil, kerr.UnknownTopicOrPartition.Code
		}
		return &partition{log: b.txns.Log(), fixedEpoch: true}, 0
	}
	var tp *eventlog.Topic
	b.meta.View(func(s *eventlog.State) { tp = s.Topics[topic] })
	if tp == nil || p < 0 || int(p) >= len(tp.Partitions) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if tp.Partitions[p].Leader != b.cfg.NodeID {
		return nil, kerr.NotLeaderForPartition.Code
	}
	part, code := b.sharedPartition(tp, topic, p)
	if part != nil {
		part.raiseEpoch(tp.Partitions[p].LeaderEpoch)
	}
	return part, code
}

// sharedPartition returns the open partition, or opens it: once, shared by
// the requests that need it meanwhile.
func (b *Broker) sharedPartition(tp *eventlog.Topic, topic string, p int32) (*partition, int16) {
	name := segment.PartitionDir(topic, p)
	b.mu.Lock()
	if part := b.parts[name]; part != nil {
		b.mu.Unlock()
		return part, 0
	}
	if c := b.opening[name]; c != nil {
		// Another request is opening it: share its result. After a drop,
		// start over: the metadata may have changed with it.
		b.mu.Unlock()
		<-c.done
		if c.drop {
			return b.openPartition(topic, p)
		}
		return c.part, c.code
	}
	c := &openCall{done: make(chan struct{})}
	b.opening[name] = c
	b.mu.Unlock()

	c.part, c.code = b.loadPartition(tp, topic, p)
	b.mu.Lock()
	delete(b.opening, name)
	if c.part != nil {
		b.parts[name] = c.part
	}
	b.mu.Unlock()
	close(c.done)
	return c.part, c.code
}

// openCall is one partition being opened, or dropped; the requests that
// need it meanwhile wait for done and share part and code, or look again
// after a drop.
type openCall struct {
	done chan struct{}
	drop bool
	part *partition
	code int16
}

// loadPartition opens a partition's log (creating or recovering it),
// rebuilds its producer state and records its topic id in its directory.
// The caller holds the partition's openCall, not b.mu.
func (b *Broker) loadPartition(tp *eventlog.Topic, topic string, p int32) (*partition, int16) {
	name := segment.PartitionDir(topic, p)
	cfg, err := topicConfig(tp.Configs)
	if err != nil {
		b.log.Error("bad topic config in metadata", "topic", topic, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	needMeta, err := b.claimPartition(topic, p, tp.ID)
	if err != nil {
		b.log.Error("cannot check a partition directory's topic", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	l, err := b.store.Open(topic, p, cfg)
	if err != nil {
		b.log.Error("cannot open partition", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	ps, err := loadProducers(l, b.producerExpiration())
	if err != nil {
		b.log.Error("cannot rebuild producer state", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	if needMeta {
		if err := b.writePartitionMeta(topic, p, tp.ID); err != nil {
			b.log.Error("cannot record a partition directory's topic", "partition", name, "error", err)
			return nil, kerr.KafkaStorageError.Code
		}
	}
	part := &partition{log: l, producers: ps, topic: topic, p: p, topicID: tp.ID}
	if b.txns != nil {
		part.verifyTxn = b.txns.Verify
	}
	if err := b.loadAborted(part); err != nil {
		b.log.Error("cannot read the aborted transactions", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	return part, 0
}

// topicSpec is a topic to create.
type topicSpec struct {
	name       string
	partitions int32
	configs    []eventlog.ConfigEntry
}

// createTopic appends a topic and its partitions, all led by this node.
func (b *Broker) createTopic(name string, partitions int32, configs []eventlog.ConfigEntry) (eventlog.UUID, error) {
	ids, err := b.createTopics([]topicSpec{{name, partitions, configs}})
	if err != nil {
		return eventlog.UUID{}, err
	}
	return ids[0], nil
}

// createTopics appends topics in one batch (one sync): all are created or,
// if one does not apply, none. Files a crash left behind under the same
// names are removed first, so that a new topic never starts with an old
// one's data.
func (b *Broker) createTopics(specs []topicSpec) ([]eventlog.UUID, error) {
	var events []eventlog.Event
	ids := make([]eventlog.UUID, len(specs))
	for i, t := range specs {
		if internalTopic(t.name) {
			// Its files are the broker's own: never dropped for a new topic.
			return nil, fmt.Errorf("%w: topic %s is internal", eventlog.ErrRefused, t.name)
		}
		for p := range t.partitions {
			if err := b.dropAbsentPartition(t.name, p); err != nil {
				return nil, err
			}
		}
		ids[i] = eventlog.NewUUID()
		events = append(events, &eventlog.TopicCreated{Name: t.name, TopicID: ids[i], PartitionCount: t.partitions, ReplicationFactor: 1, Configs: t.configs})
		for p := range t.partitions {
			events = append(events, b.placePartition(t.name, p))
		}
	}
	if _, err := b.appendMeta(events...); err != nil {
		return nil, err
	}
	return ids, nil
}

// dropPartition forgets and deletes a partition's log. Opens of it wait
// until it is gone, and it waits for an open in progress, so that no open
// brings back what is deleted.
func (b *Broker) dropPartition(topic string, p int32) error {
	return b.drop(topic, p, func() bool { return true })
}

// dropAbsentPartition deletes what is left on disk of a partition the
// metadata does not have (files of a deleted topic of the same name), before
// it is created. A partition the metadata has by then (a concurrent create
// got there first) is left alone: it may hold acknowledged records.
func (b *Broker) dropAbsentPartition(topic string, p int32) error {
	return b.drop(topic, p, func() bool {
		absent := true
		b.meta.View(func(s *eventlog.State) {
			if t := s.Topics[topic]; t != nil && int(p) < len(t.Partitions) {
				absent = false
			}
		})
		return absent
	})
}

// drop deletes a partition's log if should, asked once no open of it is in
// progress and while new opens wait, says so.
func (b *Broker) drop(topic string, p int32, should func() bool) error {
	name := segment.PartitionDir(topic, p)
	b.mu.Lock()
	for c := b.opening[name]; c != nil; c = b.opening[name] {
		b.mu.Unlock()
		<-c.done
		b.mu.Lock()
	}
	// Opens meanwhile wait, then look again.
	c := &openCall{done: make(chan struct{}), drop: true}
	b.opening[name] = c
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.opening, name)
		b.mu.Unlock()
		close(c.done)
	}()
	if !should() {
		return nil
	}
	b.mu.Lock()
	delete(b.parts, name)
	b.mu.Unlock()
	return b.store.Remove(topic, p)
}

// liveBrokers returns the unfenced brokers, by id: the ones clients are
// told about.
func liveBrokers(s *eventlog.State) []*eventlog.Broker {
	var out []*eventlog.Broker
	for _, br := range s.Brokers {
		if !br.Fenced {
			out = append(out, br)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// endpoint is a broker's address and rack as Kafka responses carry them.
func endpoint(br *eventlog.Broker) (host string, port int32, rack *string) {
	if len(br.Endpoints) > 0 {
		host, port = br.Endpoints[0].Host, br.Endpoints[0].Port
	}
	if br.Rack != "" {
		r := br.Rack
		rack = &r
	}
	return host, port, rack
}

// errorCode maps an error of the storage engine to a Kafka error code.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, segment.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, segment.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, segment.ErrInvalidBatch):
		return kerr.InvalidRecord.Code
	case errors.Is(err, segment.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, segment.ErrQueueFull):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	}
	return kerr.KafkaStorageError.Code
}
