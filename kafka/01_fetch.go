package kafka

// Fetch, versions 4-12: stored batches as they are, from the batch holding
// the fetch offset on, up to each partition's max bytes (always at least
// one whole batch for the first partition with data) and the request's max
// bytes (at most 55 MiB, as Kafka's fetch.max.bytes), only below the high
// watermark (durable data). With MinBytes not reached, the request waits
// up to MaxWaitMillis, woken by the partitions' appends, not by polling.
// From v7 on, fetch sessions (fetch_session.go): incremental fetches name
// only what changed and are answered only what is new.
// OFFSET_OUT_OF_RANGE below the log start or above the end.
// The current leader epoch (v9+) is checked (leader_epoch.go).
// read_committed (isolation level 1) reads only below the last stable
// offset (no open transaction's batches) and is told the aborted
// transactions in what it reads, whose batches consumers skip.

import (
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	// A fetch only reads, so all of it but its session's epoch runs while
	// the connection goes on.
	register(kmsg.Fetch.Int16(), 4, 12, serveLater(func(b *Broker, _ *reqContext, req *kmsg.FetchRequest) func() (kmsg.Response, error) {
		plan := b.sessions.plan(req)
		return func() (kmsg.Response, error) { return fetch(b, req, plan) }
	}))
}

// maxFetchWait bounds MaxWaitMillis.
const maxFetchWait = 30 * time.Second

// maxFetchBytes bounds a response's records whatever MaxBytes asks, as
// Kafka's fetch.max.bytes (55 MiB) does; a partition's first batch still
// goes whole to a response that has nothing before it.
const maxFetchBytes = 55 << 20

func fetch(b *Broker, req *kmsg.FetchRequest, plan fetchPlan) (kmsg.Response, error) {
	if plan.code != 0 {
		resp := kmsg.NewPtrFetchResponse()
		resp.ErrorCode = plan.code
		return resp, nil
	}
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	deadline := time.Now().Add(min(wait, maxFetchWait))
	for {
		parts, bytes, wakeups, failed := fetchOnce(b, req, plan.targets)
		// A partition's error is answered at once, as Kafka does: the client
		// has to act on it (reset its offset, find the new leader).
		if failed || bytes >= int(req.MinBytes) || len(wakeups) == 0 || !time.Now().Before(deadline) {
			return plan.respond(parts), nil
		}
		releaseParts(parts) // too little: read again after the wait
		if !waitAny(append(wakeups, b.closing), time.Until(deadline)) || b.isClosing() {
			parts, _, _, _ = fetchOnce(b, req, plan.targets)
			return plan.respond(parts), nil
		}
	}
}

// fetchOnce reads every target once; it returns each one's answer, the
// bytes in them, the channels that signal new data and whether a
// partition has an error.
func fetchOnce(b *Broker, req *kmsg.FetchRequest, targets []fetchTarget) (parts []kmsg.FetchResponseTopicPartition, total int, wakeups []<-chan struct{}, failed bool) {
	committed := req.IsolationLevel == 1 // read_committed
	budget := int(req.MaxBytes)
	if budget <= 0 || budget > maxFetchBytes {
		budget = maxFetchBytes
	}
	parts = make([]kmsg.FetchResponseTopicPartition, len(targets))
	for i, t := range targets {
		rp := &parts[i]
		rp.Default()
		rp.Partition = t.p
		rp.RecordBatches = []byte{} // empty, not null: librdkafka refuses a null record set
		part, code := b.openPartition(t.topic, t.p)
		if code == 0 {
			code = part.checkEpoch(t.epoch)
		}
		if code != 0 {
			rp.ErrorCode, failed = code, true
			continue
		}
		l := part.log
		wakeups = append(wakeups, l.Wait())
		rp.HighWatermark = l.HighWatermark()
		rp.LastStableOffset = rp.HighWatermark
		if part.producers != nil {
			rp.LastStableOffset = part.producers.stableOffset(rp.HighWatermark)
		}
		rp.LogStartOffset = l.StartOffset()
		max := min(int(t.maxBytes), budget-total)
		if max <= 0 && total > 0 {
			continue
		}
		data, err := l.ReadAlloc(t.offset, max, getFrame) // given back by releaseFetch
		switch {
		case err != nil:
			rp.ErrorCode, failed = errorCode(err), true
		case total > 0 && len(data) > budget-total:
			// Over the response budget: leave it for the next fetch.
			putFrame(data)
		case len(data) > 0:
			if committed {
				var last int64
				if data, last = cutAtStable(data, rp.LastStableOffset, t.offset); len(data) > 0 {
					rp.AbortedTransactions = abortedFor(part, t.offset, last)
				}
			}
			rp.RecordBatches = data
			total += len(data)
		}
	}
	return parts, total, wakeups, failed
}

// respond builds the response of parts, the answers to the plan's targets
// in order: all of them without a session or for a new one, only those
// with something new for the client in an incremental fetch.
func (p fetchPlan) respond(parts []kmsg.FetchResponseTopicPartition) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
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
		t := p.targets[i].topic
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != t {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = t
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
