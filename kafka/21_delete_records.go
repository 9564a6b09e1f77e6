package kafka

// DeleteRecords, versions 0-2: moves a partition's log start offset to the
// given offset (-1: the high watermark), durably before the answer; records
// below it are no longer served (OFFSET_OUT_OF_RANGE), ListOffsets earliest
// answers the new start, and segments wholly below it are deleted. An
// offset past the high watermark is OFFSET_OUT_OF_RANGE; the internal
// topics refuse with INVALID_TOPIC_EXCEPTION, as Kafka's do. The answer is
// the partition's low watermark, its log start offset after the deletion.
// It runs in the connection's order: a request after it sees the new start.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

func init() {
	register(kmsg.DeleteRecords.Int16(), 0, 2, serve(deleteRecords))
}

func deleteRecords(b *Broker, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDeleteRecordsResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			rp.ErrorCode = deletePartitionRecords(b, t.Topic, p, &rp)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func deletePartitionRecords(b *Broker, topic string, p kmsg.DeleteRecordsRequestTopicPartition, rp *kmsg.DeleteRecordsResponseTopicPartition) int16 {
	if internalTopic(topic) {
		return kerr.InvalidTopicException.Code
	}
	l, code := b.partition(topic, p.Partition)
	if code != 0 {
		return code
	}
	offset := p.Offset
	if offset == -1 {
		offset = l.HighWatermark()
	}
	start, err := l.DeleteRecordsBefore(offset)
	if err != nil {
		if !errors.Is(err, segment.ErrOffsetOutOfRange) {
			b.log.Error("cannot delete records", "topic", topic, "partition", p.Partition, "offset", p.Offset, "error", err)
		}
		return errorCode(err)
	}
	rp.LowWatermark = start
	return 0
}
