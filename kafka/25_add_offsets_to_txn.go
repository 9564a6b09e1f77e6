package kafka

// AddOffsetsToTxn, versions 0-4 (v4: as v3, for a client that understands
// TRANSACTION_ABORTABLE, KIP-890, which this broker never answers): the
// group's offsets partition joins the producer's transaction, so that its
// TxnOffsetCommit offsets commit or abort with it. Errors as
// AddPartitionsToTxn's.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/kafka/group"
)

func init() {
	register(kmsg.AddOffsetsToTxn.Int16(), 0, 4, serveLater(func(b *Broker, _ *reqContext, req *kmsg.AddOffsetsToTxnRequest) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) {
			resp := kmsg.NewPtrAddOffsetsToTxnResponse()
			tc, code := b.txnCoordinator()
			switch {
			case code != 0:
				resp.ErrorCode = code
			case req.Group == "":
				resp.ErrorCode = kerr.InvalidGroupID.Code
			default:
				codes := tc.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, map[string][]int32{group.Topic: {0}})
				resp.ErrorCode = codes[group.Topic][0]
			}
			return resp, nil
		}
	}))
}
