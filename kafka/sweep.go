package kafka

import (
	"slices"
	"time"

	"github.com/chronik-stream/chronik/kafka/txn"
)

// sweepLoop, every few seconds until the broker stops, sweeps deleted
// topics' partitions, compacts the offsets and transaction state
// partitions when they have grown, and ends transactions past their
// timeout or left half-ended by a crash (at once on start, too);
// every expiryInterval it expires idle producers' state, committed offsets
// nothing uses and idle transactional ids.
func (b *Broker) sweepLoop() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	expiry := time.NewTicker(expiryInterval(b.producerExpiration(), b.txnIDExpiration(), b.groups.OffsetsRetention()))
	defer expiry.Stop()
	if tc, code := b.txnCoordinator(); code == 0 {
		tc.Recover(time.Now())
	}
	for {
		select {
		case <-b.closing:
			return
		case now := <-expiry.C:
			b.expireProducers(now)
			if tc, code := b.txnCoordinator(); code == 0 {
				if _, err := tc.Expire(now, b.txnIDExpiration()); err != nil && !b.isClosing() {
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
			if tc, code := b.txnCoordinator(); code == 0 {
				tc.Recover(time.Now())
				if _, err := tc.Compact(); err != nil && !b.isClosing() {
					b.log.Warn("cannot compact the transaction state partition", "error", err)
				}
			}
		}
	}
}

// expiryInterval is how often state with the given expirations is looked
// for: every ten minutes (Kafka's producer.id.expiration.check.interval.ms
// and offsets.retention.check.interval.ms), or a tenth of the shortest
// expiration when that is shorter, so that state set to expire after a
// minute does not stay ten; at most every second.
func expiryInterval(expirations ...time.Duration) time.Duration {
	return max(min(10*time.Minute, slices.Min(expirations)/10), time.Second)
}

func (b *Broker) txnIDExpiration() time.Duration {
	if b.cfg.TransactionalIDExpiration > 0 {
		return b.cfg.TransactionalIDExpiration
	}
	return txn.DefaultIDExpiration
}
