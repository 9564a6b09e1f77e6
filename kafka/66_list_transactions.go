package kafka

// ListTransactions, versions 0-1: the transactional ids, their producer
// ids and states, filtered by state names, producer ids and (v1) how long
// their transaction has been open at least. A state name Kafka does not
// have is listed back in UnknownStateFilters. In a cluster, the node that
// coordinates transactions lists them; the others list none.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/kafka/txn"
)

func init() {
	register(kmsg.ListTransactions.Int16(), 0, 1, serve(listTransactions))
}

func listTransactions(b *Broker, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrListTransactionsResponse()
	states := map[string]bool{}
	known := map[string]bool{}
	for _, name := range kmsg.TransactionStateStrings() {
		known[name] = true
	}
	for _, name := range req.StateFilters {
		if !known[name] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
		states[name] = true
	}
	pids := map[int64]bool{}
	for _, id := range req.ProducerIDFilters {
		pids[id] = true
	}
	tc, code := b.txnCoordinator()
	if code != 0 {
		return resp, nil // listed by the coordinator's node
	}
	now := time.Now()
	for _, in := range tc.List() {
		switch {
		case len(states) > 0 && !states[in.State.String()]:
			continue
		case len(pids) > 0 && !pids[in.ProducerID]:
			continue
		case req.Version >= 1 && req.DurationFilterMillis >= 0 &&
			(in.State != txn.Ongoing || now.Sub(in.Started) < time.Duration(req.DurationFilterMillis)*time.Millisecond):
			continue
		}
		s := kmsg.NewListTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.TransactionState = in.ID, in.ProducerID, in.State.String()
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp, nil
}
