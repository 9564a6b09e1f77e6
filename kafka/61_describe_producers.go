package kafka

// DescribeProducers, version 0: the producers a partition this node leads
// holds state for: id, epoch, last sequence and write time, and the first
// offset of an open transaction (-1 if none), what an operator looks at to
// find a transaction holding read_committed consumers back. Partitions
// error as Fetch's do; internal ones have no producer state (none listed).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DescribeProducers.Int16(), 0, 0, serve(describeProducers))
}

func describeProducers(b *Broker, req *kmsg.DescribeProducersRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeProducersResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = p
			part, code := b.openPartition(t.Topic, p)
			if code != 0 {
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if part.producers != nil {
				for _, a := range part.producers.active() {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp = a.pid, int32(a.epoch), a.lastSeq, a.lastSeen
					ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, a.txnStart
					rp.ActiveProducers = append(rp.ActiveProducers, ap)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
