package kafka

// EndTxn, versions 0-4 (v4: as v3, for a client that understands
// TRANSACTION_ABORTABLE, KIP-890; v5 bumps the epoch at every transaction,
// transaction.version 2, not served): the producer's transaction commits or
// aborts. The answer comes once the decision is durable, a marker is
// durable in every partition of the transaction (and in the offsets
// partition if it committed offsets), and the completion is durable. A
// retry of a completed end gets the same answer; ending the other way is
// INVALID_TXN_STATE, as is ending a transaction that never began.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.EndTxn.Int16(), 0, 4, serveLater(func(b *Broker, _ *reqContext, req *kmsg.EndTxnRequest) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) {
			resp := kmsg.NewPtrEndTxnResponse()
			tc, code := b.txnCoordinator()
			if code != 0 {
				resp.ErrorCode = code
				return resp, nil
			}
			resp.ErrorCode = tc.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
			return resp, nil
		}
	}))
}
