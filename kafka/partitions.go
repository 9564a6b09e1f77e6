package kafka

// A partition of this node: opened (created or recovered) on first use,
// shared by the requests that need it meanwhile, and dropped with its topic.

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment"
)

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
	// minISR is the topic's min.insync.replicas.
	minISR atomic.Int32
	// configured is the topic entity the configuration was last taken
	// from: the metadata replaces a topic's entity when its configs (or
	// anything else of it) change.
	configured atomic.Pointer[eventlog.Topic]
}

// configure takes the configs of tp, the partition's topic as the metadata
// has it now, unless it has them already: a config changed through any
// node reaches the partition's leader on its next request, or within a
// sweep (sweepPartitions).
func (part *partition) configure(tp *eventlog.Topic) {
	if part.configured.Load() == tp {
		return
	}
	cfg, err := topicConfig(tp.Configs)
	if err == nil {
		err = part.log.SetConfig(cfg)
	}
	if err != nil {
		return // the configs were checked when set
	}
	part.took(tp)
}

// took records that the log is configured as tp says.
func (part *partition) took(tp *eventlog.Topic) {
	part.minISR.Store(minInsyncReplicas(tp.Configs))
	part.configured.Store(tp)
}

// OpenPartitionsOnceApplied is OpenPartitions for a node whose metadata
// log applies what it holds only once the controller says it is committed
// (a cluster's fast path): at its start, before that, the node knows of
// none of its partitions. It waits until the log has applied what it held
// at the start (up to offset held), or the controller replaced that part,
// and then opens them. Closing stop ends the wait, and the opening between
// two partitions; the count is then of those opened.
func (b *Broker) OpenPartitionsOnceApplied(held int64, stop <-chan struct{}) int {
	recheck := time.NewTicker(time.Second) // a replaced tail moves nothing
	defer recheck.Stop()
	for {
		moved := b.meta.Moved()
		end, _ := b.meta.End()
		if b.meta.Offset() >= min(held, end) {
			break
		}
		select {
		case <-moved:
		case <-recheck.C:
		case <-stop:
			return 0
		}
	}
	return b.openPartitions(stop)
}

// OpenPartitions opens (and so recovers) every partition this node leads
// that is on disk, and returns how many opened. One never written is
// made when first used: opened at start it would cost a directory and
// files each (thousands of created topics that never had a record), and
// on a full disk fail one by one.
func (b *Broker) OpenPartitions() (int, error) {
	return b.openPartitions(nil), nil
}

// openPartitions opens the partitions this node leads until stop is
// closed (nil: all of them).
func (b *Broker) openPartitions(stop <-chan struct{}) int {
	type tp struct {
		topic string
		p     int32
	}
	var todo []tp
	b.meta.View(func(s *eventlog.State) {
		for name, t := range s.Topics {
			for i, p := range t.Partitions {
				if p.Leader == b.cfg.NodeID && b.store.OnDisk(name, int32(i)) {
					todo = append(todo, tp{name, int32(i)})
				}
			}
		}
	})
	opened := 0
	for _, x := range todo {
		select {
		case <-stop:
			return opened
		default:
		}
		// A partition that cannot open (corruption) is logged by partition
		// and answered with an error; the others are served.
		if _, code := b.partition(x.topic, x.p); code == 0 {
			opened++
		}
	}
	return opened
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
		if !b.coordinatesHere() {
			return nil, kerr.NotLeaderForPartition.Code
		}
		return &partition{log: b.groups.Log(), fixedEpoch: true}, 0
	case txn.Topic:
		if p != 0 || b.txns == nil {
			return nil, kerr.UnknownTopicOrPartition.Code
		}
		if !b.coordinatesHere() {
			return nil, kerr.NotLeaderForPartition.Code
		}
		return &partition{log: b.txns.Log(), fixedEpoch: true}, 0
	}
	tp, code := b.ledHere(topic, p)
	if code != 0 && b.cfg.Cluster != nil {
		// A client told the topic was made may ask before the commit
		// point came: look again once the changes held here commit.
		b.settle()
		tp, code = b.ledHere(topic, p)
	}
	if code != 0 {
		return nil, code
	}
	part, code := b.sharedPartition(tp, topic, p)
	if part != nil {
		part.raiseEpoch(tp.Partitions[p].LeaderEpoch)
		part.configure(tp)
	}
	return part, code
}

// ledHere returns the topic of partition p if the metadata has this node
// lead it, or the error for a client.
func (b *Broker) ledHere(topic string, p int32) (*eventlog.Topic, int16) {
	var tp *eventlog.Topic
	b.meta.View(func(s *eventlog.State) { tp = s.Topics[topic] })
	if tp == nil || p < 0 || int(p) >= len(tp.Partitions) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if tp.Partitions[p].Leader != b.cfg.NodeID {
		return nil, kerr.NotLeaderForPartition.Code
	}
	return tp, 0
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
	l, err := b.store.OpenWithSpare(topic, p, cfg)
	if err != nil {
		b.limit.Log(b.log, slog.LevelError, "cannot open partition", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	ps, err := loadProducers(l, b.producerExpiration())
	if err != nil {
		b.log.Error("cannot rebuild producer state", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	if needMeta {
		if err := b.writePartitionMeta(topic, p, tp.ID); err != nil {
			b.limit.Log(b.log, slog.LevelError, "cannot record a partition directory's topic", "partition", name, "error", err)
			return nil, kerr.KafkaStorageError.Code
		}
	}
	part := &partition{log: l, producers: ps, topic: topic, p: p, topicID: tp.ID}
	part.took(tp) // opened with topicConfig(tp.Configs)
	if b.txns != nil {
		part.verifyTxn = b.txns.Verify
	}
	if err := b.loadAborted(part); err != nil {
		b.log.Error("cannot read the aborted transactions", "partition", name, "error", err)
		return nil, kerr.KafkaStorageError.Code
	}
	return part, 0
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
