package kafka

// Metadata, versions 0-13: brokers, the controller, the cluster id, and
// topics with their partitions, leaders, replicas, ISR and ids
// (topic_ids.go; v12+ requests may name topics by id: UNKNOWN_TOPIC_ID for
// an id no topic has); the metadata log appears as the internal topic
// __chronik_metadata, partition 0, beside __consumer_offsets and (single
// node) __transaction_state. A null topic list (v1+) or an empty one (v0)
// asks for every topic. A topic that does not exist is created when the
// request allows it (v4+; always before) and the broker runs with
// auto-create on, all of a request's together (autoCreate); otherwise it
// is answered with UNKNOWN_TOPIC_OR_PARTITION, and a bad name with
// INVALID_TOPIC_EXCEPTION.

import (
	"errors"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
)

func init() {
	register(kmsg.Metadata.Int16(), 0, 13, serve(metadata))
}

func metadata(b *Broker, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	b.settle()
	resp := kmsg.NewPtrMetadataResponse()
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	created := map[string]int16{}
	if !all && autoCreate {
		b.autoCreate(req.Topics, created)
	}
	b.meta.View(func(s *eventlog.State) {
		for _, br := range liveBrokers(s) {
			mb := kmsg.NewMetadataResponseBroker()
			mb.NodeID = br.ID
			mb.Host, mb.Port, mb.Rack = endpoint(br)
			resp.Brokers = append(resp.Brokers, mb)
		}
		cid := clusterIDOf(s, b.cfg.ClusterID)
		resp.ClusterID = &cid
		resp.ControllerID = s.Controller.Leader
		var names []string
		if all {
			for name := range s.Topics {
				names = append(names, name)
			}
			names = append(names, eventlog.TopicName, group.Topic)
			if b.cfg.Cluster == nil {
				names = append(names, txn.Topic)
			}
			sort.Strings(names)
		} else {
			for _, t := range req.Topics {
				switch name, ok := topicNameIn(s, t.TopicID); {
				case t.Topic != nil:
					names = append(names, *t.Topic)
				case ok:
					names = append(names, name)
				default:
					mt := kmsg.NewMetadataResponseTopic()
					mt.TopicID, mt.ErrorCode = t.TopicID, kerr.UnknownTopicID.Code
					resp.Topics = append(resp.Topics, mt)
				}
			}
		}
		for _, name := range names {
			mt := kmsg.NewMetadataResponseTopic()
			n := name
			mt.Topic = &n
			tp := s.Topics[name]
			switch {
			case name == eventlog.TopicName:
				// The metadata log, led by the controller: readable, internal.
				mt.IsInternal, mt.TopicID = true, internalTopicIDs[name]
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Leader, mp.LeaderEpoch = s.Controller.Leader, int32(s.Controller.Term)
				mp.Replicas, mp.ISR = s.Controller.Voters, s.Controller.Voters
				mt.Partitions = append(mt.Partitions, mp)
			case name == group.Topic || name == txn.Topic && b.cfg.Cluster == nil:
				// The committed offsets, on the group coordinator (this
				// node alone, the lowest registered id in a cluster); the
				// transactions' state, on this single node.
				mt.IsInternal, mt.TopicID = true, internalTopicIDs[name]
				mp := kmsg.NewMetadataResponseTopicPartition()
				id := b.cfg.NodeID
				if b.cfg.Cluster != nil {
					id = coordinatorIn(s)
				}
				mp.Leader = id
				if br := s.Brokers[id]; b.cfg.Cluster != nil && (br == nil || br.Fenced) {
					mp.Leader, mp.ErrorCode = -1, kerr.LeaderNotAvailable.Code
				}
				if id >= 0 {
					mp.Replicas, mp.ISR = []int32{id}, []int32{id}
				}
				mt.Partitions = append(mt.Partitions, mp)
			case created[name] != 0:
				mt.ErrorCode = created[name]
			case tp == nil:
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				mt.TopicID = tp.ID
				for i, p := range tp.Partitions {
					mp := kmsg.NewMetadataResponseTopicPartition()
					mp.Partition = int32(i)
					mp.Leader, mp.LeaderEpoch = p.Leader, p.LeaderEpoch
					mp.Replicas, mp.ISR = p.Replicas, p.ISR
					if p.Leader < 0 {
						mp.ErrorCode = kerr.LeaderNotAvailable.Code
					}
					mt.Partitions = append(mt.Partitions, mp)
				}
			}
			resp.Topics = append(resp.Topics, mt)
		}
	})
	return resp, nil
}

// autoCreate creates the topics a Metadata request names that do not
// exist, with the default partition count, as few batches as the bound on
// partitions per request allows (a client asking for many new topics at
// once waits for one sync, not one each). created gets each name that
// could not be made and why: a bad name, a failure, or, where this node
// is not the controller, LEADER_NOT_AVAILABLE while the controller (asked
// in the same batches) creates them and until this node has them.
func (b *Broker) autoCreate(topics []kmsg.MetadataRequestTopic, created map[string]int16) {
	var missing []string
	seen := map[string]bool{}
	for _, t := range topics {
		if t.Topic == nil || seen[*t.Topic] {
			continue
		}
		name := *t.Topic
		seen[name] = true
		exists := false
		b.meta.View(func(s *eventlog.State) { exists = s.Topics[name] != nil })
		if exists || internalTopic(name) {
			continue
		}
		if err := eventlog.ValidTopicName(name); err != nil {
			created[name] = kerr.InvalidTopicException.Code
			continue
		}
		missing = append(missing, name)
	}
	per := max(1, maxPartitionsPerRequest/int(b.cfg.DefaultPartitions))
	for chunk := range slices.Chunk(missing, per) {
		specs := make([]topicSpec, len(chunk))
		for i, name := range chunk {
			specs[i] = topicSpec{name: name, partitions: b.cfg.DefaultPartitions}
		}
		_, errs := b.createTopicsEach(nil, specs)
		for i, err := range errs {
			if err != nil && !errors.Is(err, eventlog.ErrRefused) {
				created[chunk[i]] = b.metaCode(err, kerr.KafkaStorageError.Code)
			}
		}
	}
	forward := namesWith(created, kerr.NotController.Code)
	for chunk := range slices.Chunk(forward, per) {
		// Not the controller: ask it to create them.
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30_000
		for _, name := range chunk {
			t := kmsg.NewCreateTopicsRequestTopic()
			t.Topic, t.NumPartitions, t.ReplicationFactor = name, b.cfg.DefaultPartitions, -1
			req.Topics = append(req.Topics, t)
			created[name] = kerr.LeaderNotAvailable.Code
		}
		if _, err := b.forward(req); err != nil {
			b.log.Debug("cannot forward topic creation to the controller", "error", err)
		}
	}
	b.meta.View(func(s *eventlog.State) {
		for _, name := range forward {
			if s.Topics[name] != nil {
				delete(created, name)
			}
		}
	})
}
