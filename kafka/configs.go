package kafka

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// topicConfigKeys are the topic configs served, with their defaults.
var topicConfigKeys = func() map[string]string {
	d := segment.DefaultConfig()
	return map[string]string{
		"retention.ms":      strconv.FormatInt(d.RetentionMs.Milliseconds(), 10),
		"retention.bytes":   strconv.FormatInt(d.RetentionBytes, 10),
		"segment.bytes":     strconv.FormatInt(d.SegmentBytes, 10),
		"segment.ms":        strconv.FormatInt(d.SegmentMs.Milliseconds(), 10),
		"max.message.bytes": strconv.Itoa(d.MaxMessageBytes),
		"cleanup.policy":    "delete",
		// CreateTime keeps the producer's timestamps; LogAppendTime stamps
		// each batch with the time it is appended.
		"message.timestamp.type": "CreateTime",
		// acks=all produce is NOT_ENOUGH_REPLICAS while the partition has
		// fewer in-sync replicas than this.
		"min.insync.replicas": "1",
	}
}()

// topicConfigValue is a topic config's value as the topic has it (set), or
// its default, and where it comes from, as DescribeConfigs and CreateTopics
// report it.
func topicConfigValue(configs map[string]string, key string) (value string, source int8) {
	if v, set := configs[key]; set {
		return v, int8(kmsg.ConfigSourceDynamicTopicConfig)
	}
	return topicConfigKeys[key], int8(kmsg.ConfigSourceDefaultConfig)
}

func sortedConfigKeys() []string {
	keys := make([]string, 0, len(topicConfigKeys))
	for k := range topicConfigKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// changeTopicConfigs validates and applies config changes to a topic:
// changes maps a key to its new value, or to nil to delete it; replace
// deletes every key not in changes (AlterConfigs). It returns a Kafka error
// code and message.
func (b *Broker) changeTopicConfigs(topic string, changes map[string]*string, replace, validateOnly bool) (int16, string) {
	if internalTopic(topic) {
		return kerr.InvalidTopicException.Code, "topic " + topic + " is internal: the broker manages it"
	}
	var tp *eventlog.Topic
	b.viewLatest(func(s *eventlog.State) { tp = s.Topics[topic] })
	if tp == nil {
		return kerr.UnknownTopicOrPartition.Code, "topic " + topic + " does not exist"
	}
	next := map[string]string{}
	if !replace {
		for k, v := range tp.Configs {
			next[k] = v
		}
	}
	var events []eventlog.Event
	for k, v := range changes {
		if _, ok := topicConfigKeys[k]; !ok {
			return kerr.InvalidConfig.Code, "config " + k + " is not supported"
		}
		if v == nil {
			delete(next, k)
		} else {
			next[k] = *v
		}
	}
	if _, err := topicConfig(next); err != nil {
		return kerr.InvalidConfig.Code, err.Error()
	}
	for _, k := range sortedConfigKeys() {
		old, had := tp.Configs[k]
		now, has := next[k]
		switch {
		case has && (!had || old != now):
			events = append(events, &eventlog.ConfigChanged{ResourceType: eventlog.ResourceTopic, Resource: topic, Name: k, Value: now})
		case had && !has:
			events = append(events, &eventlog.ConfigChanged{ResourceType: eventlog.ResourceTopic, Resource: topic, Name: k, Delete: true})
		}
	}
	if validateOnly || len(events) == 0 {
		return 0, ""
	}
	if err := b.appendMeta(nil, events...); err != nil {
		return b.metaCode(err, kerr.InvalidConfig.Code), err.Error()
	}
	// Open partitions here take the new configuration at once (others on
	// their next request or sweep), unless the topic was deleted meanwhile.
	b.viewLatest(func(s *eventlog.State) { tp = s.Topics[topic] })
	if tp == nil {
		return 0, ""
	}
	b.mu.Lock()
	for p := range len(tp.Partitions) {
		if part := b.parts[segment.PartitionDir(topic, int32(p))]; part != nil {
			part.configure(tp)
		}
	}
	b.mu.Unlock()
	return 0, ""
}

// minInsyncReplicas is a topic's min.insync.replicas (valid configs).
func minInsyncReplicas(configs map[string]string) int32 {
	n, err := strconv.ParseInt(configs["min.insync.replicas"], 10, 32)
	if err != nil {
		return 1
	}
	return int32(n)
}

// enoughReplicas says whether an acks=all produce may go to part: its
// partition has at least min.insync.replicas in-sync replicas (Kafka
// answers NOT_ENOUGH_REPLICAS before appending otherwise).
func (b *Broker) enoughReplicas(part *partition) bool {
	want := part.minISR.Load()
	if want <= 1 {
		return true // the leader itself is in sync
	}
	isr := 0
	b.meta.View(func(s *eventlog.State) {
		if t := s.Topics[part.topic]; t != nil && int(part.p) < len(t.Partitions) {
			isr = len(t.Partitions[part.p].ISR)
		}
	})
	return isr >= int(want)
}

// topicConfig is the segment configuration of a topic: defaults, then the
// topic's configs.
func topicConfig(configs map[string]string) (segment.Config, error) {
	cfg := segment.DefaultConfig()
	cfg.CheckRecords = true // what clients produce
	for k, v := range configs {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && k != "cleanup.policy" && k != "message.timestamp.type" {
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
		case "message.timestamp.type":
			if v != "CreateTime" && v != "LogAppendTime" {
				return cfg, fmt.Errorf("message.timestamp.type=%q: use CreateTime or LogAppendTime", v)
			}
			cfg.LogAppendTime = v == "LogAppendTime"
		case "min.insync.replicas":
			if n < 1 || n > math.MaxInt32 {
				return cfg, fmt.Errorf("min.insync.replicas=%d: at least 1", n)
			}
		default:
			return cfg, fmt.Errorf("config %s is not supported", k)
		}
	}
	return cfg, cfg.Validate()
}
