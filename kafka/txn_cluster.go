package kafka

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment"
)

// Transactions in a cluster: the group coordinator's node (the registered
// broker with the lowest id) coordinates every transactional id, beside
// the offsets its transactions commit; the others answer NOT_COORDINATOR.

// txnCoordinator returns the transaction coordinator if this node is the
// one, or the error for the client: NOT_COORDINATOR (it looks again), or
// COORDINATOR_NOT_AVAILABLE while the coordinator's node is fenced.
func (b *Broker) txnCoordinator() (*txn.Coordinator, int16) {
	if b.cfg.Cluster == nil {
		return b.txns, 0
	}
	id, br := b.coordinator()
	switch {
	case br == nil || br.Fenced:
		return nil, kerr.CoordinatorNotAvailable.Code
	case id != b.cfg.NodeID:
		return nil, kerr.NotCoordinator.Code
	}
	return b.txns, 0
}

// txnProducerID hands the coordinator a producer id: from this node's
// block, or in a cluster from the controller's (an idempotent
// InitProducerId forwarded to it), where the blocks are taken.
func (b *Broker) txnProducerID() (int64, error) {
	if b.cfg.Cluster == nil {
		return b.newProducerID()
	}
	if _, self := b.cfg.Cluster.Controller(); self {
		return b.newProducerID()
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := b.forward(req)
	if err != nil {
		return 0, err
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return 0, fmt.Errorf("kafka: a producer id from the controller: %w", err)
	}
	return r.ProducerID, nil
}

// remoteMarker has a partition's leader on another node write a
// transaction's marker (WriteTxnMarkers), as Kafka's coordinators do; it
// returns once the leader answered that the marker is durable.
func (b *Broker) remoteMarker(leader int32, topic string, p int32, pid int64, epoch int16, commit bool) error {
	if leader < 0 {
		return fmt.Errorf("kafka: %s-%d has no leader for the transaction's marker", topic, p)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: pid, ProducerEpoch: epoch, Committed: commit,
		Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{p}}}}}
	resp, _, err := b.relayRequest(leader, req) // no metadata change to wait for
	if err != nil {
		return err
	}
	r := resp.(*kmsg.WriteTxnMarkersResponse)
	if len(r.Markers) != 1 || len(r.Markers[0].Topics) != 1 || len(r.Markers[0].Topics[0].Partitions) != 1 {
		return fmt.Errorf("kafka: broker %d answered WriteTxnMarkers for %s-%d with %d markers", leader, topic, p, len(r.Markers))
	}
	switch code := r.Markers[0].Topics[0].Partitions[0].ErrorCode; code {
	case 0, kerr.UnknownTopicOrPartition.Code: // deleted meanwhile: nothing to end
		return nil
	default:
		return fmt.Errorf("kafka: broker %d wrote no marker to %s-%d: %w", leader, topic, p, kerr.ErrorForCode(code))
	}
}

// txnAdded asks the transaction coordinator, on another node of the
// cluster, whether transactional id's open transaction, of producer pid at
// epoch, added the partition: what a transaction's first batch in a
// partition led here needs (see appendBatch). It is asked before the
// batch is queued, never under the partition's lock.
func (b *Broker) txnAdded(id string, pid int64, epoch int16, topic string, p int32) bool {
	coord, br := b.coordinator()
	if br == nil || br.Fenced || coord == b.cfg.NodeID {
		return false
	}
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	resp, _, err := b.relayRequest(coord, req) // no metadata change to wait for
	if err != nil {
		b.log.Warn("cannot ask the transaction coordinator about a transactional batch", "coordinator", coord, "error", err)
		return false
	}
	r := resp.(*kmsg.DescribeTransactionsResponse)
	if len(r.TransactionStates) != 1 {
		return false
	}
	d := r.TransactionStates[0]
	if d.ErrorCode != 0 || d.State != txn.Ongoing.String() || d.ProducerID != pid || d.ProducerEpoch != epoch {
		return false
	}
	for _, t := range d.Topics {
		if t.Topic == topic && slices.Contains(t.Partitions, p) {
			return true
		}
	}
	return false
}

// remoteTxnCheck reports whether a produced batch is a transaction's first
// in the partition that the coordinator on another node has open with the
// partition, and how many markers of the producer the partition had when
// it asked: appendBatch takes the answer only if none came in since (the
// transaction may have ended between the question and the append). Only
// in a cluster, on a node that does not coordinate transactions;
// elsewhere appendBatch asks the local coordinator.
func (b *Broker) remoteTxnCheck(id *string, part *partition, records []byte) (bool, uint32) {
	if b.cfg.Cluster == nil || id == nil || part.producers == nil {
		return false, 0
	}
	h, err := segment.ParseHeader(records)
	if err != nil || !h.Transactional() || h.Control() {
		return false, 0
	}
	if _, code := b.txnCoordinator(); code == 0 {
		return false, 0
	}
	ps := part.producers
	ps.mu.Lock()
	_, open := ps.ongoing[h.ProducerID]
	seen := ps.markers[h.ProducerID]
	ps.mu.Unlock()
	return !open && b.txnAdded(*id, h.ProducerID, h.ProducerEpoch, part.topic, part.p), seen
}
