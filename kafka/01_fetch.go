package kafka

// Fetch, versions 4-12: stored batches as they are, from the batch holding
// the fetch offset on, up to each partition's max bytes (always at least
// one whole batch for the first partition with data) and the request's max
// bytes, only below the high watermark (durable data). With MinBytes not
// reached, the request waits up to MaxWaitMillis, woken by the partitions'
// appends, not by polling. Fetch sessions are not kept (session id 0: full
// fetches). OFFSET_OUT_OF_RANGE below the log start or above the end.
// read_committed (isolation level 1) reads only below the last stable
// offset (no open transaction's batches) and is told the aborted
// transactions in what it reads, whose batches consumers skip.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	// A fetch only reads, so all of it runs while the connection goes on.
	register(kmsg.Fetch.Int16(), 4, 12, serveLater(func(b *Broker, _ *reqContext, req *kmsg.FetchRequest) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) { return fetch(b, req) }
	}))
}

// maxFetchWait bounds MaxWaitMillis.
const maxFetchWait = 30 * time.Second

func fetch(b *Broker, req *kmsg.FetchRequest) (kmsg.Response, error) {
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	deadline := time.Now().Add(min(wait, maxFetchWait))
	for {
		resp, bytes, wakeups, failed := fetchOnce(b, req)
		// A partition's error is answered at once, as Kafka does: the client
		// has to act on it (reset its offset, find the new leader).
		if failed || bytes >= int(req.MinBytes) || len(wakeups) == 0 || !time.Now().Before(deadline) {
			return resp, nil
		}
		if !waitAny(append(wakeups, b.closing), time.Until(deadline)) || b.isClosing() {
			resp, _, _, _ = fetchOnce(b, req)
			return resp, nil
		}
	}
}

// fetchOnce reads every requested partition once; it returns the
// response, the bytes in it, the channels that signal new data and whether
// a partition has an error.
func fetchOnce(b *Broker, req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, total int, wakeups []<-chan struct{}, failed bool) {
	resp = kmsg.NewPtrFetchResponse()
	committed := req.IsolationLevel == 1 // read_committed
	budget := int(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 1 << 30
	}
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.RecordBatches = []byte{} // empty, not null: librdkafka refuses a null record set
			part, code := b.openPartition(t.Topic, p.Partition)
			if code != 0 {
				rp.ErrorCode, failed = code, true
				rt.Partitions = append(rt.Partitions, rp)
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
			max := int(p.PartitionMaxBytes)
			if total > 0 {
				max = min(max, budget-total)
			}
			if max > 0 || total == 0 {
				data, err := l.Read(p.FetchOffset, max, nil)
				switch {
				case err != nil:
					rp.ErrorCode, failed = errorCode(err), true
				case total > 0 && len(data) > budget-total:
					// Over the response budget: leave it for the next fetch.
				case len(data) > 0:
					if committed {
						var last int64
						if data, last = cutAtStable(data, rp.LastStableOffset, p.FetchOffset); len(data) > 0 {
							rp.AbortedTransactions = abortedFor(part, p.FetchOffset, last)
						}
					}
					rp.RecordBatches = data
					total += len(data)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, total, wakeups, failed
}

// waitAny waits until one channel is closed or d passes.
func waitAny(chans []<-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	done := make(chan struct{})
	defer close(done)
	woke := make(chan struct{}, 1)
	for _, c := range chans {
		go func() {
			select {
			case <-c:
				select {
				case woke <- struct{}{}:
				default:
				}
			case <-done:
			}
		}()
	}
	select {
	case <-woke:
		return true
	case <-timer.C:
		return false
	}
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
