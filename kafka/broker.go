package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/loglimit"
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
	// CreateTopics asking for -1 (num.partitions): 1 to 10,000.
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
	// FetchMemory bounds the record bytes fetch responses hold at once,
	// read and not yet written (see fetchMemory); 0 is DefaultFetchMemory.
	FetchMemory int64
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
	// limit bounds the lines that every partition of a failing disk would
	// write alike (opening thousands at start).
	limit *loglimit.Limiter

	// mu guards parts and opening, and is never held across I/O: opening
	// a partition (recovery, producer state) must not stall the traffic of
	// the partitions already open.
	mu      sync.Mutex
	parts   map[string]*partition // by <topic>-<partition>
	opening map[string]*openCall  // partitions being opened, by the same key

	pids   producerIDs
	groups *group.Coordinator
	txns   *txn.Coordinator // serves while this node coordinates transactions (txnCoordinator)
	relay  relay

	sessions *fetchSessions
	fetchMem *fetchMemory

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
	b.closeRelay()
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// NewBroker registers the node in the metadata log (on its first start, or
// when its address changed) and returns the broker.
func NewBroker(cfg Config, store *segment.Store, meta *eventlog.Log, log *slog.Logger) (*Broker, error) {
	if cfg.DefaultPartitions < 1 || cfg.DefaultPartitions > maxPartitionsPerRequest {
		return nil, fmt.Errorf("kafka: default partitions %d: between 1 and %d", cfg.DefaultPartitions, maxPartitionsPerRequest)
	}
	if cfg.FetchMemory <= 0 {
		cfg.FetchMemory = DefaultFetchMemory
	}
	b := &Broker{cfg: cfg, store: store, meta: meta, log: log, limit: loglimit.New(10 * time.Second), parts: map[string]*partition{}, opening: map[string]*openCall{}, closing: make(chan struct{}),
		sessions: newFetchSessions(), fetchMem: newFetchMemory(cfg.FetchMemory)}
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
		// The metadata says which cluster it is of, as a cluster's does:
		// started later as a node of a cluster, this data joins no other.
		if s.BrokerConfigs[""][ClusterIDConfig] == "" && cfg.ClusterID != "" {
			events = append(events, &eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: ClusterIDConfig, Value: cfg.ClusterID})
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
		cfg.IsCoordinator = b.coordinatesHere
	}
	cfg.PartitionExists = b.partitionExists
	cfg.InTransaction = func(pid int64, epoch int16) bool {
		return b.txns != nil && b.txns.Verify(pid, epoch, group.Topic, 0)
	}
	// Kafka's offsets.topic.segment.bytes: 100 MiB. No retention: a
	// group's last commit may be years old; the partition is compacted
	// instead (group.Coordinator.Compact). A group's metadata is one
	// record with every member's subscription and assignment, megabytes
	// for a large group (Kafka Streams puts its task maps there): up to
	// groupRecordBytes, where a data partition's limit would have such a
	// group fail to store its sync and rebalance again and again.
	scfg := segment.DefaultConfig()
	scfg.SegmentBytes = 100 << 20
	scfg.RetentionMs = -1
	scfg.MaxMessageBytes = groupRecordBytes
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

// groupRecordBytes bounds a batch of the offsets partition.
const groupRecordBytes = 32 << 20

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
// fenced, groups wait for it). br is nil while no broker is registered.
func (b *Broker) coordinator() (id int32, br *eventlog.Broker) {
	if b.cfg.Cluster == nil {
		b.meta.View(func(s *eventlog.State) { br = s.Brokers[b.cfg.NodeID] })
		return b.cfg.NodeID, br
	}
	b.meta.View(func(s *eventlog.State) {
		id = coordinatorIn(s)
		br = s.Brokers[id]
	})
	return id, br
}

// coordinatorIn is the registered broker with the lowest id: a cluster's
// group and transaction coordinator (-1 before any registered).
func coordinatorIn(s *eventlog.State) int32 {
	id := int32(-1)
	for bid := range s.Brokers {
		if id < 0 || bid < id {
			id = bid
		}
	}
	return id
}

// coordinatesHere reports whether this node coordinates the groups and
// transactions, holding __consumer_offsets and __transaction_state: a
// single node does; in a cluster the coordinator does (coordinator), and
// the others' copies of those partitions, unused, are not served.
func (b *Broker) coordinatesHere() bool {
	id, _ := b.coordinator()
	return id == b.cfg.NodeID
}

// internalTopic reports whether a topic is one of the broker's own: the
// metadata log, the offsets and the transactions' state. Clients may read
// them, nothing else.
func internalTopic(name string) bool {
	return name == eventlog.TopicName || name == group.Topic || name == txn.Topic
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
// if one does not apply, none.
func (b *Broker) createTopics(specs []topicSpec) ([]eventlog.UUID, error) {
	groups, ids, err := b.prepareTopics(specs)
	if err == nil {
		err = b.appendMeta(nil, slices.Concat(groups...)...)
	}
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// createTopicsEach creates topics in one batch or, if one does not apply
// (another request created it meanwhile), one at a time (appendEach): the
// id and the error of each.
func (b *Broker) createTopicsEach(rc *reqContext, specs []topicSpec) ([]eventlog.UUID, []error) {
	groups, ids, err := b.prepareTopics(specs)
	if err != nil {
		errs := make([]error, len(specs))
		for i := range errs {
			errs[i] = err
		}
		return ids, errs
	}
	return ids, b.appendEach(rc, groups)
}

// prepareTopics returns the events that create each topic and its
// partitions, all led by this node, and the topics' new ids. Files a crash
// left behind under the same names are removed first, so that a new topic
// never starts with an old one's data.
func (b *Broker) prepareTopics(specs []topicSpec) ([][]eventlog.Event, []eventlog.UUID, error) {
	groups := make([][]eventlog.Event, len(specs))
	ids := make([]eventlog.UUID, len(specs))
	for i, t := range specs {
		if internalTopic(t.name) {
			// Its files are the broker's own: never dropped for a new topic.
			return nil, ids, fmt.Errorf("%w: topic %s is internal", eventlog.ErrRefused, t.name)
		}
		for p := range t.partitions {
			if err := b.dropAbsentPartition(t.name, p); err != nil {
				return nil, ids, err
			}
		}
		ids[i] = eventlog.NewUUID()
		groups[i] = append(groups[i], &eventlog.TopicCreated{Name: t.name, TopicID: ids[i], PartitionCount: t.partitions, ReplicationFactor: 1, Configs: t.configs})
		for p := range t.partitions {
			groups[i] = append(groups[i], b.placePartition(t.name, p))
		}
	}
	return groups, ids, nil
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
