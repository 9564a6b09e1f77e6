package kafka

// CreateTopics, versions 0-7: creates topics as TopicCreated and
// PartitionChanged events in one batch, synced before the answer. A
// partition count of -1 takes the default; a replication factor other than
// 1 (or -1) is INVALID_REPLICATION_FACTOR on a single node; an existing topic
// is TOPIC_ALREADY_EXISTS; a bad name INVALID_TOPIC_EXCEPTION; an unknown or
// bad config (or one given twice) INVALID_CONFIG. More than 10,000
// partitions in one request is POLICY_VIOLATION for every topic, as in
// Kafka. ValidateOnly checks without creating. Manual replica assignments
// are INVALID_REQUEST for now. From version 5 a topic's answer lists its
// configs, as DescribeConfigs would.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.CreateTopics.Int16(), 0, 7, serveWith(createTopics))
}

func createTopics(b *Broker, rc *reqContext, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	// Every topic is checked first; those that pass are created together,
	// in one batch of events and one sync.
	var specs []topicSpec
	var accepted []*kmsg.CreateTopicsResponseTopic
	seen := map[string]int{}
	for _, t := range req.Topics {
		seen[t.Topic]++
	}
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		parts, rf := t.NumPartitions, t.ReplicationFactor
		if parts == -1 {
			parts = b.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = 1
		}
		var configs []eventlog.ConfigEntry
		cfgMap := map[string]string{}
		twice, given := "", map[string]bool{}
		for _, c := range t.Configs {
			if given[c.Name] {
				twice = c.Name
			}
			given[c.Name] = true
			if c.Value != nil {
				configs = append(configs, eventlog.ConfigEntry{Key: c.Name, Value: *c.Value})
				cfgMap[c.Name] = *c.Value
			}
		}
		fail := func(code int16, msg string) {
			rt.ErrorCode = code
			rt.ErrorMessage = &msg
		}
		exists := false
		b.viewLatest(func(s *eventlog.State) { exists = s.Topics[t.Topic] != nil })
		if err := eventlog.ValidTopicName(t.Topic); err != nil {
			fail(kerr.InvalidTopicException.Code, err.Error())
		} else if seen[t.Topic] > 1 {
			fail(kerr.InvalidRequest.Code, "topic "+t.Topic+" is listed more than once")
		} else if exists || internalTopic(t.Topic) {
			fail(kerr.TopicAlreadyExists.Code, "topic "+t.Topic+" already exists")
		} else if len(t.ReplicaAssignment) > 0 {
			fail(kerr.InvalidRequest.Code, "manual replica assignment is not supported yet")
		} else if parts < 1 {
			fail(kerr.InvalidPartitions.Code, "the partition count must be at least 1")
		} else if rf != 1 {
			fail(kerr.InvalidReplicationFactor.Code, "replication factor 1 only: copying partition data between brokers is not supported yet")
		} else if twice != "" {
			fail(kerr.InvalidConfig.Code, "config "+twice+" is given more than once")
		} else if _, err := topicConfig(cfgMap); err != nil {
			fail(kerr.InvalidConfig.Code, err.Error())
		} else {
			rt.NumPartitions, rt.ReplicationFactor = parts, rf
			specs = append(specs, topicSpec{t.Topic, parts, configs})
			accepted = append(accepted, rt)
		}
	}
	total := 0
	for _, spec := range specs {
		total += int(spec.partitions)
	}
	if total > maxPartitionsPerRequest {
		msg := tooManyPartitions(total)
		for _, rt := range accepted {
			rt.ErrorCode, rt.ErrorMessage = kerr.PolicyViolation.Code, &msg
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
		}
		return resp, nil
	}
	if !req.ValidateOnly && len(specs) > 0 {
		ids, errs := b.createTopicsEach(rc, specs)
		for i, rt := range accepted {
			b.setCreated(rt, ids[i], errs[i])
		}
	}
	setConfigs(req, accepted, specs)
	return resp, nil
}

// setConfigs tells, from version 5, each topic created (or that would be:
// ValidateOnly) every config it has, as DescribeConfigs would.
func setConfigs(req *kmsg.CreateTopicsRequest, accepted []*kmsg.CreateTopicsResponseTopic, specs []topicSpec) {
	if req.Version < 5 {
		return
	}
	keys := sortedConfigKeys()
	for i, rt := range accepted {
		if rt.ErrorCode != 0 {
			continue
		}
		set := make(map[string]string, len(specs[i].configs))
		for _, c := range specs[i].configs {
			set[c.Key] = c.Value
		}
		rt.Configs = make([]kmsg.CreateTopicsResponseTopicConfig, len(keys))
		for j, k := range keys {
			c := &rt.Configs[j]
			*c = kmsg.NewCreateTopicsResponseTopicConfig()
			v, source := topicConfigValue(set, k)
			c.Name, c.Value, c.Source = k, &v, source
		}
	}
}

// maxPartitionsPerRequest bounds the partitions one CreateTopics or
// CreatePartitions request makes, as in Kafka (which answers
// POLICY_VIOLATION beyond it): one request is one atomic batch of events.
const maxPartitionsPerRequest = 10_000

func tooManyPartitions(n int) string {
	return fmt.Sprintf("Excessively large number of partitions per request: %d, at most %d; make them in several requests", n, maxPartitionsPerRequest)
}

func (b *Broker) setCreated(rt *kmsg.CreateTopicsResponseTopic, id eventlog.UUID, err error) {
	var code int16
	switch {
	case errors.Is(err, eventlog.ErrRefused):
		code = kerr.TopicAlreadyExists.Code
	case err != nil:
		code = b.metaCode(err, kerr.KafkaStorageError.Code)
	default:
		rt.TopicID = id
		return
	}
	msg := err.Error()
	rt.ErrorCode, rt.ErrorMessage = code, &msg
	rt.NumPartitions, rt.ReplicationFactor = -1, -1
}
