package kafka

// Fetch, versions 4-18: stored batches as they are, from the batch holding
// the fetch offset on, up to each partition's max bytes (always at least
// one whole batch for the first partition with data) and the request's max
// bytes (at most 55 MiB, as Kafka's fetch.max.bytes), only below the high
// watermark (durable data). With MinBytes not reached, the request waits
// up to MaxWaitMillis, woken by the partitions' appends, not by polling.
// From v7 on, fetch sessions (fetch_session.go): incremental fetches name
// only what changed and are answered only what is new.
// OFFSET_OUT_OF_RANGE below the log start or above the end.
// The current leader epoch (v9+) is checked (leader_epoch.go); a partition
// led elsewhere is NOT_LEADER_OR_FOLLOWER, with its leader (leader_hint.go).
// read_committed (isolation level 1) reads only below the last stable
// offset (no open transaction's batches) and is told the aborted
// transactions in what it reads, whose batches consumers skip.
// From v13 on, topics are named by id (topic_ids.go), in sessions too: a
// topic id no topic has is UNKNOWN_TOPIC_ID, and a session made naming
// topics one way and fetched from naming them the other is
// FETCH_SESSION_TOPIC_ID_ERROR. v16 adds the leaders' endpoints to
// NOT_LEADER_OR_FOLLOWER; the rest of what v15-v18 add is for replicas.

import (
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	// A fetch only reads, so all of it but its session's epoch runs while
	// the connection goes on.
	register(kmsg.Fetch.Int16(), 4, 18, func(b *Broker, _ *reqContext, r kmsg.Request) reply {
		req := r.(*kmsg.FetchRequest)
		plan := b.sessions.plan(req)
		var held int64 // of the fetch memory, until the response is written
		return reply{
			wait: func() (kmsg.Response, error) {
				resp, n := fetch(b, req, plan)
				held = n
				return resp, nil
			},
			written: func() { b.fetchMem.give(held) },
		}
	})
}

// maxFetchWait bounds MaxWaitMillis.
const maxFetchWait = 30 * time.Second

// maxFetchBytes bounds a response's records whatever MaxBytes asks, as
// Kafka's fetch.max.bytes (55 MiB) does; a partition's first batch still
// goes whole to a response that has nothing before it.
const maxFetchBytes = 55 << 20

// fetch answers a fetch, waiting for data as it asks; it returns the
// response and the bytes of the broker's fetch memory it holds, to be given
// back once the response is written.
func fetch(b *Broker, req *kmsg.FetchRequest, plan fetchPlan) (*kmsg.FetchResponse, int64) {
	if plan.code != 0 {
		resp := kmsg.NewPtrFetchResponse()
		resp.ErrorCode = plan.code
		return resp, 0
	}
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	deadline := time.Now().Add(min(wait, maxFetchWait))
	for {
		r := fetchOnce(b, req, plan.targets)
		// A partition's error is answered at once, as Kafka does: the client
		// has to act on it (reset its offset, find the new leader).
		if r.failed || r.bytes >= int(req.MinBytes) || len(r.wakeups) == 0 || !time.Now().Before(deadline) {
			return plan.respond(&r), r.held
		}
		r.release() // too little: read again after the wait
		if !waitAny(append(r.wakeups, b.closing), time.Until(deadline)) || b.isClosing() {
			r = fetchOnce(b, req, plan.targets)
			return plan.respond(&r), r.held
		}
	}
}

// fetchRead is what one pass over a fetch's partitions read.
type fetchRead struct {
	b       *Broker
	parts   []kmsg.FetchResponseTopicPartition // by target
	bytes   int                                // of records in parts
	held    int64                              // of the broker's fetch memory
	wakeups []<-chan struct{}                  // closed when there may be more to read
	failed  bool                               // a partition has an error
	hints   leaderHints                        // of partitions led elsewhere
}

// release gives back what a read that is not answered holds.
func (r *fetchRead) release() {
	releaseParts(r.parts)
	r.b.fetchMem.give(r.held)
}

// fetchOnce reads every target once.
func fetchOnce(b *Broker, req *kmsg.FetchRequest, targets []fetchTarget) fetchRead {
	committed := req.IsolationLevel == 1 // read_committed
	budget := int(req.MaxBytes)
	if budget <= 0 || budget > maxFetchBytes {
		budget = maxFetchBytes
	}
	r := fetchRead{b: b, parts: make([]kmsg.FetchResponseTopicPartition, len(targets))}
	starved := false
	for i, t := range targets {
		rp := &r.parts[i]
		rp.Default()
		rp.Partition = t.p
		rp.RecordBatches = []byte{} // empty, not null: librdkafka refuses a null record set
		part, name, code := b.targetPartition(t)
		if code == 0 {
			code = part.checkEpoch(t.epoch)
		}
		if code != 0 {
			rp.ErrorCode, r.failed = code, true
			if code == kerr.NotLeaderForPartition.Code {
				if id, epoch, ok := r.hints.note(b, name, t.p); ok {
					rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = id, epoch
				}
			}
			continue
		}
		l := part.log
		r.wakeups = append(r.wakeups, l.Wait())
		rp.HighWatermark = l.HighWatermark()
		rp.LastStableOffset = rp.HighWatermark
		if part.producers != nil {
			rp.LastStableOffset = part.producers.stableOffset(rp.HighWatermark)
		}
		rp.LogStartOffset = l.StartOffset()
		want := min(int(t.maxBytes), budget-r.bytes)
		if want <= 0 && r.bytes > 0 {
			continue
		}
		if t.offset == rp.HighWatermark {
			continue // nothing to read: no memory needed
		}
		// Memory for what can be read; an offset out of range reads
		// nothing but its error (or, if the log moved meanwhile, one batch).
		granted, limit := int64(0), 1
		if t.offset >= rp.LogStartOffset && t.offset < rp.HighWatermark {
			if granted = b.fetchMem.take(int64(max(want, 1))); granted == 0 {
				starved = true // as if there were no data yet
				continue
			}
			limit = min(want, int(granted))
		}
		data, err := l.ReadAlloc(t.offset, limit, getFrame) // given back by releaseFetch
		read := len(data)
		switch {
		case err != nil:
			rp.ErrorCode, r.failed = errorCode(err), true
		case r.bytes > 0 && len(data) > min(budget-r.bytes, int(granted)):
			// Over the response's budget or the memory granted (only a
			// first batch goes beyond): leave it for the next fetch.
			putFrame(data)
			read = 0
		case len(data) > 0:
			if committed {
				var last int64
				if data, last = cutAtStable(data, rp.LastStableOffset, t.offset); len(data) > 0 {
					rp.AbortedTransactions = abortedFor(part, t.offset, last)
				}
			}
			rp.RecordBatches = data
			r.bytes += len(data)
		}
		// A first batch larger than granted goes whole.
		b.fetchMem.settle(granted, int64(read))
		r.held += int64(read)
	}
	if starved {
		r.wakeups = append(r.wakeups, b.fetchMem.wait())
	}
	return r
}

// targetPartition opens the partition a fetch names; one named by its
// topic's id (v13+) that no topic has, or whose topic now has another id
// (deleted and made again), is UNKNOWN_TOPIC_ID.
// It returns the topic's name too.
func (b *Broker) targetPartition(t fetchTarget) (*partition, string, int16) {
	if !t.byID {
		part, code := b.openPartition(t.topic, t.p)
		return part, t.topic, code
	}
	name, ok := b.topicName(t.id)
	if !ok {
		return nil, "", kerr.UnknownTopicID.Code
	}
	part, code := b.openPartition(name, t.p)
	if code == 0 && part.topicID != (eventlog.UUID{}) && part.topicID != t.id {
		return nil, name, kerr.UnknownTopicID.Code
	}
	return part, name, code
}

// respond builds the response of a read's parts, the answers to the plan's targets
// in order: all of them without a session or for a new one, only those
// with something new for the client in an incremental fetch.
func (p fetchPlan) respond(r *fetchRead) *kmsg.FetchResponse {
	parts := r.parts
	resp := kmsg.NewPtrFetchResponse()
	for _, h := range r.hints.hints {
		rb := kmsg.NewFetchResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = h.id, h.host, h.port, h.rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	var left []bool // by target: left out of an incremental response
	if p.session != nil {
		resp.SessionID = p.session.id
		left = p.session.told(p.targets, parts, p.incremental)
	}
	// Partitions of a topic in a row share its entry, as in Kafka's
	// responses (a session's order may name a topic again later).
	for i, rp := range parts {
		if left != nil && left[i] {
			continue
		}
		t := &p.targets[i]
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != t.topic || resp.Topics[n-1].TopicID != t.id {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.topic, t.id
			resp.Topics = append(resp.Topics, rt)
		}
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return resp
}

// releaseFetch gives the record buffers of a fetch response back to the
// frame pools (fetchOnce reads into them) once nothing refers to them any
// more: its frame is made, or it is not answered.
func releaseFetch(resp *kmsg.FetchResponse) {
	for i := range resp.Topics {
		releaseParts(resp.Topics[i].Partitions)
	}
}

func releaseParts(parts []kmsg.FetchResponseTopicPartition) {
	for i := range parts {
		putFrame(parts[i].RecordBatches)
		parts[i].RecordBatches = nil
	}
}

// waitAny waits until one channel is closed or d passes. One select over
// all of them: a fetch of many partitions parks one goroutine, not one a
// partition (a select takes at most maxSelect cases: beyond, one goroutine
// a share).
func waitAny(chans []<-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	if len(chans) < maxSelect {
		return selectAny(chans, timer.C)
	}
	done, woke := make(chan struct{}), make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait() // none is left reading chans
	defer close(done)
	for len(chans) > 0 {
		share := chans[:min(len(chans), maxSelect-1)]
		chans = chans[len(share):]
		wg.Go(func() {
			if selectAny(share, done) {
				select {
				case woke <- struct{}{}:
				default:
				}
			}
		})
	}
	select {
	case <-woke:
		return true
	case <-timer.C:
		return false
	}
}

// maxSelect is the most cases reflect.Select takes.
const maxSelect = 65536

// selectAny waits until one of chans or stop is ready; true for one of chans.
func selectAny[T any](chans []<-chan struct{}, stop <-chan T) bool {
	cases := make([]reflect.SelectCase, len(chans)+1)
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)}
	for i, c := range chans {
		cases[i+1] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)}
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen != 0
}

// abortedFor lists the aborted transactions among the batches of a
// read_committed fetch from offset from up to last, for its response.
func abortedFor(part *partition, from, last int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	if part.producers == nil {
		return nil
	}
	var out []kmsg.FetchResponseTopicPartitionAbortedTransaction
	for _, a := range part.producers.abortedIn(from, last) {
		x := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		x.ProducerID, x.FirstOffset = a.pid, a.first
		out = append(out, x)
	}
	return out
}
