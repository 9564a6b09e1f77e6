package kafka

// DescribeTransactions, version 0: each transactional id's state, producer
// id and epoch, timeout, the start of its transaction and the partitions
// in it; TRANSACTIONAL_ID_NOT_FOUND for one the coordinator does not
// know, NOT_COORDINATOR on a node of a cluster that does not coordinate
// transactions.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DescribeTransactions.Int16(), 0, 0, serve(describeTransactions))
}

func describeTransactions(b *Broker, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeTransactionsResponse()
	for _, id := range req.TransactionalIDs {
		d := kmsg.NewDescribeTransactionsResponseTransactionState()
		d.TransactionalID, d.ProducerID, d.ProducerEpoch, d.StartTimestamp = id, -1, -1, -1
		tc, code := b.txnCoordinator()
		if code != 0 {
			d.ErrorCode = code
			resp.TransactionStates = append(resp.TransactionStates, d)
			continue
		}
		in, ok := tc.Describe(id)
		if !ok {
			d.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, d)
			continue
		}
		d.State, d.ProducerID, d.ProducerEpoch = in.State.String(), in.ProducerID, in.ProducerEpoch
		d.TimeoutMillis = int32(in.Timeout.Milliseconds())
		if !in.Started.IsZero() {
			d.StartTimestamp = in.Started.UnixMilli()
		}
		for _, topic := range sortedTopics(in.Partitions) {
			t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			t.Topic, t.Partitions = topic, in.Partitions[topic]
			d.Topics = append(d.Topics, t)
		}
		resp.TransactionStates = append(resp.TransactionStates, d)
	}
	return resp, nil
}

func sortedTopics(m map[string][]int32) []string {
	out := make([]string, 0, len(m))
	for topic := range m {
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}
