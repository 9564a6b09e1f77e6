package kafka

// Produce, versions 3-13 (record batch v2): each partition's records must
// be one RecordBatch v2; it is validated (CRC, lengths, max.message.bytes,
// and, decompressed, every record: segment.CheckRecords, as Kafka checks
// them) and appended, stamped with the partition's leader epoch.
// acks=0 gets no response (a partition that fails closes the connection,
// as in Kafka); acks=1 and acks=-1 (all replicas: here, this node) are
// answered once the batch is durable. A topic with
// message.timestamp.type=LogAppendTime has each batch stamped with its
// append time (returned as the partition's LogAppendTime); acks=-1 to a
// partition with fewer in-sync replicas than min.insync.replicas is
// NOT_ENOUGH_REPLICAS. Per-partition errors: UNKNOWN_TOPIC_OR_PARTITION,
// CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT,
// MESSAGE_TOO_LARGE, REQUEST_TIMED_OUT (the write queue is full: retry),
// KAFKA_STORAGE_ERROR, NOT_LEADER_OR_FOLLOWER (v10+ with the leader's id,
// epoch and endpoint: leader_hint.go). Producing to the metadata log is
// refused.
// Idempotent and transactional batches are checked against the producer's
// sequence, and a transaction's first batch in a partition against its
// coordinator (INVALID_TXN_STATE: see appendBatch); control batches are
// INVALID_RECORD. From v13 on, topics are named by id (topic_ids.go): an id
// no topic has, or that its name's topic no longer has, is
// UNKNOWN_TOPIC_ID. v12's partitions added to a transaction by the produce
// itself (KIP-890 part 2) are not served: clients use them only where the
// broker finalizes transaction.version 2, which this one does not.

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

func init() {
	register(kmsg.Produce.Int16(), 3, 13, serveLater(produce))
}

// produce queues each batch for its partition's appender in the
// connection's order and leaves the wait for the appends and syncs to the
// returned function, so that pipelined produce requests share syncs.
func produce(b *Broker, _ *reqContext, req *kmsg.ProduceRequest) func() (kmsg.Response, error) {
	resp := kmsg.NewPtrProduceResponse()
	type pending struct {
		rp   *kmsg.ProduceResponseTopicPartition
		r    appendReq
		part *partition
	}
	var waits []*pending
	var hints leaderHints
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		name, known := t.Topic, true
		if req.Version >= 13 {
			name, known = b.topicName(t.TopicID)
		}
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			if !known {
				rp.ErrorCode = kerr.UnknownTopicID.Code
				continue
			}
			if internalTopic(name) {
				rp.ErrorCode = kerr.InvalidTopicException.Code
				continue
			}
			part, code := b.openPartition(name, p.Partition)
			if code == 0 && req.Version >= 13 && part.topicID != t.TopicID {
				part, code = nil, kerr.UnknownTopicID.Code // made again under its name
			}
			if code == 0 && req.Acks == -1 && !b.enoughReplicas(part) {
				code = kerr.NotEnoughReplicas.Code
			}
			if code != 0 {
				rp.ErrorCode = code
				if code == kerr.NotLeaderForPartition.Code {
					if id, epoch, ok := hints.note(b, name, p.Partition); ok {
						rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = id, epoch
					}
				}
				continue
			}
			w := &pending{rp: rp, r: appendReq{records: p.Records, acks: req.Acks}, part: part}
			w.r.txnOK, w.r.txnSeen = b.remoteTxnCheck(req.TransactionID, part, p.Records)
			part.appender.submit(part, &w.r)
			waits = append(waits, w)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for _, h := range hints.hints {
		rb := kmsg.NewProduceResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = h.id, h.host, h.port, h.rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	if req.Acks == 0 {
		// No response; waiting for the appends (not the syncs) tells the
		// connection that the request's frame is no longer read. A
		// partition that failed closes the connection, as in Kafka: the
		// client learns that something went wrong and refreshes its
		// metadata.
		return func() (kmsg.Response, error) {
			var failed int16
			for _, w := range waits {
				<-w.r.done
				failed = max(failed, w.r.code)
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					failed = max(failed, rp.ErrorCode)
				}
			}
			if failed != 0 {
				return nil, fmt.Errorf("kafka: an acks=0 produce failed (error %d): closing the connection", failed)
			}
			return nil, nil
		}
	}
	// The batches are queued in this connection's order; what is left is
	// waiting for them to be appended and synced.
	return func() (kmsg.Response, error) {
		for _, w := range waits {
			<-w.r.done
			switch {
			case w.r.code != 0:
				w.rp.ErrorCode = w.r.code
				continue
			case w.r.a == nil: // a retry of a batch already written
				// Answered as the batch is: its sync may still be running,
				// and may fail (a retry that came before the failure was
				// told its batch was durable, and it was lost).
				if d := w.r.dup.a; d != nil {
					if err := d.Wait(); err != nil {
						w.rp.ErrorCode, w.rp.BaseOffset = errorCode(err), -1
						continue
					}
				}
				w.rp.BaseOffset = w.r.dup.base
				if h, err := w.part.log.HeaderAt(w.r.dup.base); err == nil && h.LogAppendTime() {
					w.rp.LogAppendTime = h.MaxTimestamp
				}
			default:
				w.rp.BaseOffset, w.rp.LogAppendTime = w.r.a.Base, w.r.a.LogAppendTime
				if err := w.r.a.Wait(); err != nil {
					w.rp.ErrorCode = errorCode(err)
					w.rp.BaseOffset = -1
					if h, herr := segment.ParseHeader(w.r.records); herr == nil && h.ProducerID >= 0 && w.part.producers != nil {
						w.part.producers.lost(&h)
					}
					continue
				}
			}
			w.rp.LogStartOffset = w.part.log.StartOffset()
		}
		return resp, nil
	}
}

// appendBatch appends one produced batch. An idempotent batch (producer id
// >= 0) is checked against the producer's sequence first, under the
// partition's producer lock so that checks and appends keep one order: a
// retry of a recent batch returns the offset it got (no append), a gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch INVALID_PRODUCER_EPOCH. A
// transactional batch opens its producer's transaction in the partition
// (the last stable offset stays below it until the marker), if the
// coordinator has the transaction open with this partition added
// (INVALID_TXN_STATE otherwise). Control batches are the coordinator's: a
// client's is INVALID_RECORD.
func appendBatch(part *partition, r *appendReq) (*segment.Appended, *seqRange, int16) {
	h, err := segment.ParseHeader(r.records)
	if err == nil && h.Control() != r.marker {
		return nil, nil, kerr.InvalidRecord.Code
	}
	if err != nil || h.ProducerID < 0 || part.producers == nil {
		a, err := part.log.Append(r.records, part.epoch.Load(), r.acks)
		return a, nil, errorCode(err)
	}
	ps := part.producers
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if r.marker {
		if e := ps.byID[h.ProducerID]; e != nil && h.ProducerEpoch < e.epoch {
			return nil, nil, kerr.InvalidProducerEpoch.Code // a marker of an older incarnation
		}
		a, err := part.log.Append(r.records, part.epoch.Load(), r.acks)
		if err != nil {
			return nil, nil, errorCode(err)
		}
		typ, _ := segment.ControlType(r.records)
		ps.marker(&h, a.Base, typ == segment.ControlCommit, time.Now().UnixMilli())
		return a, nil, 0
	}
	dup, code := ps.check(&h)
	if code != 0 || dup != nil {
		return nil, dup, code
	}
	// A remote check holds only if no marker of the producer came in since
	// it was asked: the transaction it saw open may have ended meanwhile.
	remoteOK := r.txnOK && ps.markers[h.ProducerID] == r.txnSeen
	_, open := ps.ongoing[h.ProducerID]
	opens := h.Transactional() && !open
	if opens && !remoteOK && (part.verifyTxn == nil || !part.verifyTxn(h.ProducerID, h.ProducerEpoch, part.topic, part.p)) {
		return nil, nil, kerr.InvalidTxnState.Code
	}
	if opens {
		// The transaction holds the stable offset back before its first
		// batch can be durable: a sync of other writes may cover the batch
		// as soon as it is written, and a read_committed fetch between
		// that and a begin after the append would read it as committed.
		// The log's end is where the batch goes (the appender appends one
		// batch of the partition at a time), or below.
		ps.begin(h.ProducerID, part.log.EndOffset())
	}
	// After the producer's last batch: if a failed sync dropped it, this
	// one must not take its place (errorCode: KAFKA_STORAGE_ERROR).
	a, err := part.log.AppendAfter(r.records, part.epoch.Load(), r.acks, ps.lastEnd(&h))
	if err != nil {
		if opens {
			ps.cancel(h.ProducerID)
		}
		return nil, nil, errorCode(err)
	}
	ps.record(&h, a.Base, time.Now().UnixMilli(), a)
	if opens {
		ps.rebase(h.ProducerID, a.Base)
	}
	return a, nil, 0
}
