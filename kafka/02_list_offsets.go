package kafka

// ListOffsets, versions 1-11: timestamp -2 is the log start offset, -1 the
// high watermark (the latest durable offset), -3 (v7+) the first record with
// the highest timestamp and that timestamp. The timestamps of tiered
// storage (KIP-405, KIP-1005, KIP-1023) are answered as Kafka answers them
// for a topic without it: -4 (v8+, the local log start) is the log start,
// -5 (v9+, the latest tiered offset) and -6 (v11+, the earliest offset not
// yet uploaded) offset -1. A special timestamp the request's version does
// not know is UNSUPPORTED_VERSION. v10's timeout is for remote reads and
// does not apply. Any other timestamp finds the
// first record at or after it, in the first batch whose max timestamp is
// (as Kafka's time index does), and its timestamp; none is offset -1. For read_committed
// (isolation level 1), -1 is the last stable offset. Each offset comes
// with its batch's leader epoch (the current one for -1), and the current
// leader epoch (v4+) is checked (leader_epoch.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sinceVersion is the first version that knows each special timestamp
// beyond -1 and -2.
var sinceVersion = map[int64]int16{-3: 7, -4: 8, -5: 9, -6: 11}

func init() {
	register(kmsg.ListOffsets.Int16(), 1, 11, serve(listOffsets))
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
			if v, special := sinceVersion[p.Timestamp]; special && req.Version < v {
				code = kerr.UnsupportedVersion.Code
			}
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
			case -2, -4:
				rp.Offset = l.StartOffset()
			case -5, -6:
				rp.Offset = -1
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
				off, at, ok, err := l.LookupTime(p.Timestamp)
				switch {
				case err != nil:
					rp.ErrorCode = errorCode(err)
					rp.Offset = -1
				case ok:
					rp.Offset, rp.Timestamp = off, at // the record's, as Kafka answers
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
