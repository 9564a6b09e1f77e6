package kafka

// InitProducerId, versions 0-5 (v5: the client understands
// TRANSACTION_ABORTABLE, KIP-890, which this broker never answers). For
// idempotent producers: a new producer id (from a block the broker took in
// the metadata log) with epoch 0, or, when a producer re-initialises with
// its id and epoch (v3+), the same id with the next epoch (a new id when
// the epoch would overflow). For a transactional id, the transaction
// coordinator's answer (kafka/txn): its producer id with the next epoch, an
// open transaction aborted first; INVALID_TRANSACTION_TIMEOUT above 15
// minutes; PRODUCER_FENCED (before v4: INVALID_PRODUCER_EPOCH) for a
// producer passing an epoch that is not the current one; NOT_COORDINATOR on
// a node of a cluster that does not coordinate transactions (an idempotent
// producer's is forwarded to the controller, a transactional one's is not).

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.InitProducerID.Int16(), 0, 5, serve(initProducerID))
}

func initProducerID(b *Broker, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if transactional(req) {
		tc, code := b.txnCoordinator()
		if code != 0 {
			resp.ErrorCode = code
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = tc.InitProducerID(*req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
		if resp.ErrorCode == kerr.ProducerFenced.Code && req.Version < 4 {
			resp.ErrorCode = kerr.InvalidProducerEpoch.Code
		}
		return resp, nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp, nil
	}
	id, err := b.newProducerID()
	if err != nil {
		resp.ErrorCode = b.metaCode(err, kerr.CoordinatorNotAvailable.Code)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// transactional reports whether an InitProducerId is a transactional
// producer's.
func transactional(req *kmsg.InitProducerIDRequest) bool {
	return req.TransactionalID != nil && *req.TransactionalID != ""
}
