package kafka

// ListOffsets, versions 1-7: timestamp -2 is the log start offset, -1 the
// high watermark (the latest durable offset), -3 (max timestamp, v7) is
// answered as latest for now; any other timestamp finds the first batch
// whose max timestamp is at or after it (batch precision), or -1 with no
// such batch. Isolation levels give the same answer (no transactions yet).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.ListOffsets.Int16(), 1, 7, serve(listOffsets))
}

func listOffsets(b *Broker, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrListOffsetsResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.Timestamp = -1
			l, code := b.partition(t.Topic, p.Partition)
			if code != 0 {
				rp.ErrorCode = code
				rp.Offset = -1
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			rp.LeaderEpoch = 0
			switch p.Timestamp {
			case -2:
				rp.Offset = l.StartOffset()
			case -1, -3:
				rp.Offset = l.HighWatermark()
			default:
				off, ok, err := l.LookupTime(p.Timestamp)
				switch {
				case err != nil:
					rp.ErrorCode = errorCode(err)
					rp.Offset = -1
				case ok:
					rp.Offset, rp.Timestamp = off, p.Timestamp
				default:
					rp.Offset = -1
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
