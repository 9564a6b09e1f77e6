package kafka

// WriteTxnMarkers, versions 0-1: markers that end producers' transactions
// in partitions this node leads, each durable before the answer. The
// transaction coordinator sends it for partitions other nodes of a cluster
// lead (its own it writes itself); it also serves the operator's abort of
// a transaction that holds read_committed consumers back
// (kafka-transactions.sh abort, Admin.abortTransaction). Per partition:
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION (internal topics),
// INVALID_PRODUCER_EPOCH (older than the producer's), storage errors.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.WriteTxnMarkers.Int16(), 0, 1, serveLater(func(b *Broker, _ *reqContext, req *kmsg.WriteTxnMarkersRequest) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) { return writeTxnMarkers(b, req), nil }
	}))
}

func writeTxnMarkers(b *Broker, req *kmsg.WriteTxnMarkersRequest) *kmsg.WriteTxnMarkersResponse {
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				if internalTopic(t.Topic) {
					rp.ErrorCode = kerr.InvalidTopicException.Code
				} else if _, code := b.openPartition(t.Topic, p); code != 0 {
					rp.ErrorCode = code
				} else if err := b.writeMarker(t.Topic, p, m.ProducerID, m.ProducerEpoch, m.Committed); err != nil {
					rp.ErrorCode = codeOf(err)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp
}

// codeOf is the Kafka error code of an error: its own if it is one.
func codeOf(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return errorCode(err)
}
