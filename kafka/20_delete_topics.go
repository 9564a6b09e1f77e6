package kafka

// DeleteTopics, versions 0-6: by name, or (v6) by name or topic id. The
// TopicDeleted events of a request are synced together (in batches of
// 10,000), then the partitions' files are removed. A topic that does not
// exist is UNKNOWN_TOPIC_OR_PARTITION (by id: UNKNOWN_TOPIC_ID); one named
// twice INVALID_REQUEST; the metadata log cannot be deleted
// (INVALID_TOPIC_EXCEPTION).

import (
	"errors"

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
	// Every topic is looked up first; those found are deleted together,
	// in batches of deleteBatch events (one sync each).
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	found := make([]*eventlog.Topic, len(targets))
	times := map[string]int{}
	for i, t := range targets {
		rt := &resp.Topics[i]
		*rt = kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = t.name, t.id
		var tp *eventlog.Topic
		b.viewLatest(func(s *eventlog.State) {
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
			found[i] = tp
			times[tp.Name]++
		}
	}
	var batch []int // indexes of the topics of the next batch
	deleteNow := func() {
		groups := make([][]eventlog.Event, len(batch))
		for j, i := range batch {
			groups[j] = []eventlog.Event{&eventlog.TopicDeleted{Name: found[i].Name, TopicID: found[i].ID}}
		}
		for j, err := range b.appendEach(nil, groups) { // one deleted meanwhile: one at a time
			b.deleted(&resp.Topics[batch[j]], found[batch[j]], err)
		}
		batch = batch[:0]
	}
	for i, tp := range found {
		switch {
		case tp == nil:
		case times[tp.Name] > 1:
			msg := "topic " + tp.Name + " is named more than once"
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = kerr.InvalidRequest.Code, &msg
		default:
			if batch = append(batch, i); len(batch) == deleteBatch {
				deleteNow()
			}
		}
	}
	if len(batch) > 0 {
		deleteNow()
	}
	return resp, nil
}

// deleteBatch is how many topics one metadata batch deletes, well within
// the bound on a batch.
const deleteBatch = 10_000

// deleted answers the deletion of tp, and removes its partitions' files
// once it is durable.
func (b *Broker) deleted(rt *kmsg.DeleteTopicsResponseTopic, tp *eventlog.Topic, err error) {
	if err != nil {
		rt.ErrorCode = b.metaCode(err, kerr.KafkaStorageError.Code)
		if errors.Is(err, eventlog.ErrRefused) {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		msg := err.Error()
		rt.ErrorMessage = &msg
		return
	}
	for p := range len(tp.Partitions) {
		if err := b.dropPartition(tp.Name, int32(p)); err != nil {
			b.log.Warn("cannot remove a deleted topic's files", "topic", tp.Name, "partition", p, "error", err)
		}
	}
}
