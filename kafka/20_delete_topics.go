package kafka

// DeleteTopics, versions 0-6: by name, or (v6) by name or topic id. The
// TopicDeleted event is synced first, then the partitions' files are
// removed. A topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION (by
// id: UNKNOWN_TOPIC_ID); the metadata log cannot be deleted
// (INVALID_TOPIC_EXCEPTION).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.DeleteTopics.Int16(), 0, 6, serve(deleteTopics))
}

func deleteTopics(b *Broker, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	for _, n := range req.TopicNames {
		targets = append(targets, target{name: &n})
	}
	for _, t := range req.Topics {
		targets = append(targets, target{name: t.Topic, id: t.TopicID})
	}
	for _, t := range targets {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = t.name, t.id
		var tp *eventlog.Topic
		b.meta.View(func(s *eventlog.State) {
			if t.name != nil {
				tp = s.Topics[*t.name]
			} else if name, ok := s.TopicIDs[t.id]; ok {
				tp = s.Topics[name]
			}
		})
		switch {
		case t.name != nil && internalTopic(*t.name):
			rt.ErrorCode = kerr.InvalidTopicException.Code
		case tp == nil && t.name == nil:
			rt.ErrorCode = kerr.UnknownTopicID.Code
		case tp == nil:
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			name := tp.Name
			rt.Topic, rt.TopicID = &name, tp.ID
			if _, err := b.appendMeta(&eventlog.TopicDeleted{Name: tp.Name, TopicID: tp.ID}); err != nil {
				rt.ErrorCode = b.metaCode(err, kerr.KafkaStorageError.Code)
				break
			}
			for p := range len(tp.Partitions) {
				if err := b.dropPartition(tp.Name, int32(p)); err != nil {
					b.log.Warn("cannot remove a deleted topic's files", "topic", tp.Name, "partition", p, "error", err)
				}
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
