package kafka

// The broker configs DescribeConfigs serves for this node (resource type
// BROKER, named by its id): what chronik start's flags set, under Kafka's
// names, and the topic defaults as Kafka's log.* configs. All are
// read-only: flags set them at start (STATIC_BROKER_CONFIG, or
// DEFAULT_CONFIG where the value is Kafka's default).

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/kafka/txn"
)

// brokerConfig is one broker config with its value and Kafka's default
// ("" for none).
type brokerConfig struct {
	name, value, kafkaDefault string
	typ                       kmsg.ConfigType
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// brokerConfigs lists this node's broker configs, sorted by name.
func (b *Broker) brokerConfigs() []brokerConfig {
	id := strconv.Itoa(int(b.cfg.NodeID))
	g := b.groups.Config()
	txnMax := b.cfg.TransactionMaxTimeout
	if txnMax <= 0 {
		txnMax = txn.DefaultMaxTimeout
	}
	topic := func(key string) string { return topicConfigKeys[key] }
	return []brokerConfig{
		{"advertised.listeners", "PLAINTEXT://" + b.cfg.Host + ":" + strconv.Itoa(int(b.cfg.Port)), "", kmsg.ConfigTypeString},
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics), "true", kmsg.ConfigTypeBoolean},
		{"broker.id", id, "", kmsg.ConfigTypeInt},
		{"default.replication.factor", "1", "1", kmsg.ConfigTypeInt},
		{"delete.topic.enable", "true", "true", kmsg.ConfigTypeBoolean},
		{"group.initial.rebalance.delay.ms", ms(g.InitialRebalanceDelay), "3000", kmsg.ConfigTypeInt},
		{"group.max.session.timeout.ms", ms(g.MaxSessionTimeout), "1800000", kmsg.ConfigTypeInt},
		{"group.min.session.timeout.ms", ms(g.MinSessionTimeout), "6000", kmsg.ConfigTypeInt},
		{"log.cleanup.policy", topic("cleanup.policy"), topic("cleanup.policy"), kmsg.ConfigTypeList},
		{"log.dirs", b.store.Dir(), "", kmsg.ConfigTypeString},
		{"log.message.timestamp.type", topic("message.timestamp.type"), topic("message.timestamp.type"), kmsg.ConfigTypeString},
		{"log.retention.bytes", topic("retention.bytes"), topic("retention.bytes"), kmsg.ConfigTypeLong},
		{"log.retention.ms", topic("retention.ms"), topic("retention.ms"), kmsg.ConfigTypeLong},
		{"log.roll.ms", topic("segment.ms"), topic("segment.ms"), kmsg.ConfigTypeLong},
		{"log.segment.bytes", topic("segment.bytes"), topic("segment.bytes"), kmsg.ConfigTypeInt},
		{"message.max.bytes", topic("max.message.bytes"), topic("max.message.bytes"), kmsg.ConfigTypeInt},
		{"min.insync.replicas", topic("min.insync.replicas"), topic("min.insync.replicas"), kmsg.ConfigTypeInt},
		{"node.id", id, "", kmsg.ConfigTypeInt},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), "1", kmsg.ConfigTypeInt},
		{"offsets.retention.minutes", strconv.FormatInt(int64(b.groups.OffsetsRetention()/time.Minute), 10), "10080", kmsg.ConfigTypeInt},
		{"producer.id.expiration.ms", ms(b.producerExpiration()), "86400000", kmsg.ConfigTypeInt},
		{"transaction.max.timeout.ms", ms(txnMax), "900000", kmsg.ConfigTypeInt},
		{"transactional.id.expiration.ms", ms(b.txnIDExpiration()), "604800000", kmsg.ConfigTypeInt},
	}
}

// describeBroker answers DescribeConfigs for a broker resource: this
// node's configs for its own id; the cluster-wide dynamic defaults (name
// "") are none, as there are no dynamic broker configs.
func (b *Broker) describeBroker(r kmsg.DescribeConfigsRequestResource, rr *kmsg.DescribeConfigsResponseResource) {
	switch r.ResourceName {
	case "":
		return
	case strconv.Itoa(int(b.cfg.NodeID)):
	default:
		msg := "this is broker " + strconv.Itoa(int(b.cfg.NodeID)) + ": ask broker " + r.ResourceName + " for its configs"
		rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, &msg
		return
	}
	wanted := map[string]bool{}
	for _, n := range r.ConfigNames {
		wanted[n] = true
	}
	for _, bc := range b.brokerConfigs() {
		if len(wanted) > 0 && !wanted[bc.name] {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.ConfigType, c.ReadOnly = bc.name, bc.typ, true
		v := bc.value
		c.Value = &v
		c.IsDefault = bc.kafkaDefault != "" && bc.value == bc.kafkaDefault
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		if c.IsDefault {
			c.Source = kmsg.ConfigSourceDefaultConfig
		}
		rr.Configs = append(rr.Configs, c)
	}
}
