package kafka

// TxnOffsetCommit, versions 0-4 (v4: as v3, for a client that understands
// TRANSACTION_ABORTABLE, KIP-890; v5 adds the group to the transaction
// itself, transaction.version 2, not served): offsets committed in the
// producer's transaction, written to the offsets partition and held pending
// until the transaction's marker (kafka/group/txn.go). v3 carries the
// member's generation, checked as OffsetCommit does. Errors per partition
// as OffsetCommit's, and INVALID_TXN_STATE unless the producer's
// transaction is open and added the offsets (AddOffsetsToTxn).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.TxnOffsetCommit.Int16(), 0, 4, serveLater(func(b *Broker, _ *reqContext, req *kmsg.TxnOffsetCommitRequest) func() (kmsg.Response, error) {
		wait := b.groups.TxnCommit(req)
		return func() (kmsg.Response, error) { return wait(), nil }
	}))
}
