package kafka

// AddPartitionsToTxn, versions 0-3: the partitions join the producer's
// transaction (the transaction coordinator, kafka/txn). Per partition:
// UNKNOWN_TOPIC_OR_PARTITION for one that does not exist (the others are
// OPERATION_NOT_ATTEMPTED), INVALID_PRODUCER_ID_MAPPING,
// INVALID_PRODUCER_EPOCH (a fenced producer), CONCURRENT_TRANSACTIONS
// while the transaction ends. Version 4 (brokers verifying a produce,
// KIP-890) is not served.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.AddPartitionsToTxn.Int16(), 0, 3, serveLater(func(b *Broker, _ *reqContext, req *kmsg.AddPartitionsToTxnRequest) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) {
			resp := kmsg.NewPtrAddPartitionsToTxnResponse()
			parts := map[string][]int32{}
			for _, t := range req.Topics {
				parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
			}
			b.settleMissing(func(yield func(string, int32) bool) {
				for topic, ps := range parts {
					for _, p := range ps {
						if !yield(topic, p) {
							return
						}
					}
				}
			})
			var codes map[string]map[int32]int16
			if tc, code := b.txnCoordinator(); code != 0 {
				codes = allCodes(parts, code)
			} else {
				codes = tc.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts)
			}
			for _, t := range req.Topics {
				rt := kmsg.NewAddPartitionsToTxnResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, codes[t.Topic][p]
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
	}))
}

func allCodes(parts map[string][]int32, code int16) map[string]map[int32]int16 {
	out := map[string]map[int32]int16{}
	for topic, ps := range parts {
		out[topic] = map[int32]int16{}
		for _, p := range ps {
			out[topic][p] = code
		}
	}
	return out
}
