package kafka

// CreatePartitions, versions 0-3: grows a topic to Count partitions, led
// by this node, as PartitionChanged events in one batch. Fewer partitions
// than the topic has is INVALID_PARTITIONS; manual assignments are
// INVALID_REQUEST for now; ValidateOnly checks without changing anything.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.CreatePartitions.Int16(), 0, 3, serve(createPartitions))
}

func createPartitions(b *Broker, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrCreatePartitionsResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		fail := func(code int16, msg string) { rt.ErrorCode, rt.ErrorMessage = code, &msg }
		var have int32 = -1
		b.meta.View(func(s *eventlog.State) {
			if tp := s.Topics[t.Topic]; tp != nil {
				have = int32(len(tp.Partitions))
			}
		})
		switch {
		case internalTopic(t.Topic):
			fail(kerr.InvalidTopicException.Code, "topic "+t.Topic+" is internal: the broker manages it")
		case have < 0:
			fail(kerr.UnknownTopicOrPartition.Code, "topic "+t.Topic+" does not exist")
		case len(t.Assignment) > 0:
			fail(kerr.InvalidRequest.Code, "manual replica assignment is not supported yet")
		case t.Count <= have:
			fail(kerr.InvalidPartitions.Code, "a topic can only grow: ask for more partitions than it has")
		case !req.ValidateOnly:
			var events []eventlog.Event
			for p := have; p < t.Count; p++ {
				if err := b.dropAbsentPartition(t.Topic, p); err != nil {
					fail(kerr.KafkaStorageError.Code, err.Error())
					break
				}
				events = append(events, b.placePartition(t.Topic, p))
			}
			if rt.ErrorCode == 0 {
				if _, err := b.appendMeta(events...); err != nil {
					fail(b.metaCode(err, kerr.InvalidPartitions.Code), err.Error())
				}
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
