package kafka

import (
	"time"

	"github.com/chronik-stream/chronik/kafka/txn"
)

// sweepLoop, every few seconds until the broker stops, sweeps deleted
// topics' partitions, compacts the offsets and transaction state
// partitions when they have grown, and ends transactions past their
// timeout or left half-ended by a crash (at once on start, too);
// every ten minutes (Kafka's producer.id.expiration.check.interval.ms and
// offsets.retention.check.interval.ms) it expires idle producers' state,
// committed offsets nothing uses and idle transactional ids.
func (b *Broker) sweepLoop() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	expiry := time.NewTicker(10 * time.Minute)
	defer expiry.Stop()
	if b.txns != nil {
		b.txns.Recover(time.Now())
	}
	for {
		select {
		case <-b.closing:
			return
		case now := <-expiry.C:
			b.expireProducers(now)
			if b.txns != nil {
				after := b.cfg.TransactionalIDExpiration
				if after <= 0 {
					after = txn.DefaultIDExpiration
				}
				if _, err := b.txns.Expire(now, after); err != nil && !b.isClosing() {
					b.log.Warn("cannot expire transactional ids", "error", err)
				}
			}
			if _, err := b.groups.ExpireOffsets(now); err != nil && !b.isClosing() {
				b.log.Warn("cannot store expired offsets", "error", err)
			}
		case <-t.C:
			b.sweepPartitions()
			if _, err := b.groups.Compact(); err != nil && !b.isClosing() {
				b.log.Warn("cannot compact the offsets partition", "error", err)
			}
			if b.txns != nil {
				b.txns.Recover(time.Now())
				if _, err := b.txns.Compact(); err != nil && !b.isClosing() {
					b.log.Warn("cannot compact the transaction state partition", "error", err)
				}
			}
		}
	}
}
