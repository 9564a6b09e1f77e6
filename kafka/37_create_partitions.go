package kafka

// CreatePartitions, versions 0-3: grows a topic to Count partitions, led
// by this node, as PartitionChanged events in one batch. Fewer partitions
// than the topic has is INVALID_PARTITIONS; manual assignments are
// INVALID_REQUEST for now; more than 10,000 new partitions in one request
// is POLICY_VIOLATION for every topic, as in Kafka; ValidateOnly checks
// without changing anything.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.CreatePartitions.Int16(), 0, 3, serveWith(createPartitions))
}

func createPartitions(b *Broker, rc *reqContext, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrCreatePartitionsResponse()
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	// Every topic is checked first: the partitions the valid ones add
	// count against the request's bound.
	have := make([]int32, len(req.Topics))
	total := 0
	seen := map[string]int{}
	for _, t := range req.Topics {
		seen[t.Topic]++
	}
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		have[i] = -1
		b.viewLatest(func(s *eventlog.State) {
			if tp := s.Topics[t.Topic]; tp != nil {
				have[i] = int32(len(tp.Partitions))
			}
		})
		switch {
		case seen[t.Topic] > 1:
			failPartitions(rt, kerr.InvalidRequest.Code, "topic "+t.Topic+" is listed more than once")
		case internalTopic(t.Topic):
			failPartitions(rt, kerr.InvalidTopicException.Code, "topic "+t.Topic+" is internal: the broker manages it")
		case have[i] < 0:
			failPartitions(rt, kerr.UnknownTopicOrPartition.Code, "topic "+t.Topic+" does not exist")
		case len(t.Assignment) > 0:
			failPartitions(rt, kerr.InvalidRequest.Code, "manual replica assignment is not supported yet")
		case t.Count <= have[i]:
			failPartitions(rt, kerr.InvalidPartitions.Code, "a topic can only grow: ask for more partitions than it has")
		default:
			total += int(t.Count - have[i])
		}
	}
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		switch {
		case rt.ErrorCode != 0:
		case total > maxPartitionsPerRequest:
			failPartitions(rt, kerr.PolicyViolation.Code, tooManyPartitions(total))
		case !req.ValidateOnly:
			var events []eventlog.Event
			for p := have[i]; p < t.Count; p++ {
				if err := b.dropAbsentPartition(t.Topic, p); err != nil {
					failPartitions(rt, kerr.KafkaStorageError.Code, err.Error())
					break
				}
				events = append(events, b.placePartition(t.Topic, p))
			}
			if rt.ErrorCode == 0 {
				if err := b.appendMeta(rc, events...); err != nil {
					failPartitions(rt, b.metaCode(err, kerr.InvalidPartitions.Code), err.Error())
				}
			}
		}
	}
	return resp, nil
}

func failPartitions(rt *kmsg.CreatePartitionsResponseTopic, code int16, msg string) {
	rt.ErrorCode, rt.ErrorMessage = code, &msg
}
