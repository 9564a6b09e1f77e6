package kafka

// Produce, versions 3-10 (record batch v2): each partition's records must
// be one RecordBatch v2; it is validated (CRC, lengths, max.message.bytes)
// and appended with this node's leader epoch. acks=0 gets no response;
// acks=1 and acks=-1 (all replicas: here, this node) are answered once the
// batch is durable. Per-partition errors: UNKNOWN_TOPIC_OR_PARTITION,
// CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT,
// MESSAGE_TOO_LARGE, REQUEST_TIMED_OUT (the write queue is full: retry),
// KAFKA_STORAGE_ERROR. Producing to the metadata log is refused.
// Idempotent and transactional batches are not checked yet (InitProducerId
// is not served, so clients do not send them).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

func init() {
	register(kmsg.Produce.Int16(), 3, 10, serve(produce))
}

func produce(b *Broker, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrProduceResponse()
	type pending struct {
		rp *kmsg.ProduceResponseTopicPartition
		a  *segment.Appended
		l  *segment.Log
	}
	var waits []pending
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			if t.Topic == eventlog.TopicName {
				rp.ErrorCode = kerr.InvalidTopicException.Code
				continue
			}
			l, code := b.partition(t.Topic, p.Partition)
			if code != 0 {
				rp.ErrorCode = code
				continue
			}
			a, err := l.Append(p.Records, 0, req.Acks)
			if err != nil {
				rp.ErrorCode = errorCode(err)
				continue
			}
			rp.BaseOffset = a.Base
			waits = append(waits, pending{rp, a, l})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if req.Acks == 0 {
		return nil, nil
	}
	for _, w := range waits {
		if err := w.a.Wait(); err != nil {
			w.rp.ErrorCode = errorCode(err)
			w.rp.BaseOffset = -1
			continue
		}
		w.rp.LogStartOffset = w.l.StartOffset()
	}
	return resp, nil
}
