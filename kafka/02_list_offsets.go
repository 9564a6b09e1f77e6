package kafka

// ListOffsets, versions 1-7: timestamp -2 is the log start offset, -1 the
// high watermark (the latest durable offset), -3 (v7) the first record with
// the highest timestamp and that timestamp; any other timestamp finds the
// first record at or after it, in the first batch whose max timestamp is
// (as Kafka's time index does); none is offset -1. For read_committed
// (isolation level 1), -1 is the last stable offset. Each offset comes
// with its batch's leader epoch (the current one for -1), and the current
// leader epoch (v4+) is checked (leader_epoch.go).

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
			part, code := b.openPartition(t.Topic, p.Partition)
			if code == 0 {
				code = part.checkEpoch(p.CurrentLeaderEpoch)
			}
			if code != 0 {
				rp.ErrorCode = code
				rp.Offset = -1
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			l := part.log
			switch p.Timestamp {
			case -2:
				rp.Offset = l.StartOffset()
			case -1:
				rp.Offset = l.HighWatermark()
				if req.IsolationLevel == 1 && part.producers != nil {
					rp.Offset = part.producers.stableOffset(rp.Offset)
				}
			case -3:
				ts, off, ok, err := l.MaxTimestamp()
				switch {
				case err != nil:
					rp.ErrorCode = errorCode(err)
					rp.Offset = -1
				case ok:
					rp.Offset, rp.Timestamp = off, ts
				default:
					rp.Offset = -1
				}
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
			switch {
			case rp.ErrorCode != 0 || rp.Offset < 0:
			case p.Timestamp == -1:
				rp.LeaderEpoch = part.epoch.Load()
			default:
				rp.LeaderEpoch = part.epochAt(rp.Offset)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
