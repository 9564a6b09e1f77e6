package kafka

// Leader epochs (KIP-101, KIP-320). A partition's epoch is the one the
// metadata gives its leader; produced batches are stamped with it, so
// the epochs in a log never go down. Requests that carry the client's
// idea of it (Fetch, ListOffsets, OffsetForLeaderEpoch) are answered
// FENCED_LEADER_EPOCH when it is older and UNKNOWN_LEADER_EPOCH when it
// is newer than this node's: the client refreshes its metadata, or waits
// for this node's. OffsetForLeaderEpoch answers where an epoch ends, found
// by a binary search over the log's batch headers.

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// raiseEpoch records the leader epoch the metadata gives; it never goes
// back (two requests may see the metadata change in either order).
func (p *partition) raiseEpoch(e int32) {
	for {
		cur := p.epoch.Load()
		if e <= cur || p.epoch.CompareAndSwap(cur, e) {
			return
		}
	}
}

// checkEpoch answers a request's current leader epoch (-1: not given).
func (p *partition) checkEpoch(current int32) int16 {
	if current < 0 || p.fixedEpoch {
		return 0
	}
	switch e := p.epoch.Load(); {
	case current < e:
		return kerr.FencedLeaderEpoch.Code
	case current > e:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// epochAt returns the leader epoch of the batch holding offset, or the
// current one at the high watermark (Kafka's epoch for an offset in
// ListOffsets).
func (p *partition) epochAt(offset int64) int32 {
	if offset >= p.log.HighWatermark() || offset < 0 {
		return p.epoch.Load()
	}
	h, err := p.log.HeaderAt(offset)
	if err != nil {
		return -1
	}
	return h.PartitionLeaderEpoch
}

// endOffsetFor answers OffsetForLeaderEpoch for epoch e: the largest epoch
// of the log not above e and the offset where it ends (the first offset
// of a later epoch, or the high watermark for the current one); -1, -1
// for an epoch above the current one. For an epoch below every batch's,
// e and the log's first offset of a later epoch, as Kafka answers.
func (p *partition) endOffsetFor(e int32) (int32, int64, int16) {
	cur := p.epoch.Load()
	l := p.log
	hw := l.HighWatermark()
	switch {
	case e < 0 || e > cur:
		return -1, -1, 0
	case e == cur:
		return e, hw, 0
	}
	// The smallest offset whose batch has an epoch above e (hw if none):
	// epochs rise along the log, so a binary search over batches finds it.
	start := l.StartOffset()
	lo, hi := start, hw
	for lo < hi {
		h, err := l.HeaderAt(lo + (hi-lo)/2)
		if err != nil {
			return -1, -1, errorCode(err)
		}
		if h.PartitionLeaderEpoch > e {
			hi = max(h.BaseOffset, lo)
		} else {
			lo = h.LastOffset() + 1
		}
	}
	if lo == start {
		return e, lo, 0
	}
	h, err := l.HeaderAt(lo - 1)
	if err != nil {
		return -1, -1, errorCode(err)
	}
	return h.PartitionLeaderEpoch, lo, 0
}
