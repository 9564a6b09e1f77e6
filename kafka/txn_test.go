package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/kafkatest"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func values(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	slices.Sort(out)
	return out
}

// TestTransactionsWithFranzGo drives transactions with franz-go's
// transactional producer: read_committed consumers see committed records
// only, read_uncommitted ones everything but the markers; a transaction
// left open holds read_committed consumers back until a new incarnation of
// its producer fences it (its end fails) and aborts it; all of it holds
// across a restart, after which the transactional id goes on.
func TestTransactionsWithFranzGo(t *testing.T) {
	dir := t.TempDir()
	addr, stop := runBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "out"); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	txnProducer := func(addr string) *kgo.Client {
		return must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("out"),
			kgo.TransactionTimeout(10*time.Second)))
	}
	inTxn := func(cl *kgo.Client, prefix string, n int, end kgo.TransactionEndTry) error {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values(prefix, n) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce in a transaction: %v", err)
			}
		}
		return cl.EndTransaction(ctx, end)
	}
	p := txnProducer(addr)
	if err := inTxn(p, "a", 10, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := inTxn(p, "x", 5, kgo.TryAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if err := inTxn(p, "b", 3, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	committed := slices.Concat(values("a", 10), values("b", 3))
	slices.Sort(committed)
	if got := kafkatest.ReadValues(t, addr, "out", true, 13); !slices.Equal(got, committed) {
		t.Fatalf("read_committed read %v, want %v", got, committed)
	}
	all := slices.Concat(committed, values("x", 5))
	slices.Sort(all)
	if got := kafkatest.ReadValues(t, addr, "out", false, 18); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted read %v, want %v", got, all)
	}

	// A transaction left open: read_committed stops before it.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values("o", 2) {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A new incarnation fences p and aborts its transaction.
	p2 := txnProducer(addr)
	if err := inTxn(p2, "c", 4, kgo.TryCommit); err != nil {
		t.Fatalf("the new incarnation's commit: %v", err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer committed")
	} else if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Logf("the fenced producer's commit: %v", err)
	}
	p.Close()
	committed = slices.Concat(committed, values("c", 4))
	slices.Sort(committed)
	if got := kafkatest.ReadValues(t, addr, "out", true, 17); !slices.Equal(got, committed) {
		t.Fatalf("read_committed after the fencing read %v, want %v", got, committed)
	}
	p2.Close()

	stop()
	addr, stop = runBroker(t, dir)
	defer stop()
	if got := kafkatest.ReadValues(t, addr, "out", true, 17); !slices.Equal(got, committed) {
		t.Fatalf("read_committed after a restart read %v, want %v", got, committed)
	}
	p3 := txnProducer(addr)
	defer p3.Close()
	if err := inTxn(p3, "d", 2, kgo.TryCommit); err != nil {
		t.Fatalf("commit after a restart: %v", err)
	}
	committed = slices.Concat(committed, values("d", 2))
	slices.Sort(committed)
	if got := kafkatest.ReadValues(t, addr, "out", true, 19); !slices.Equal(got, committed) {
		t.Fatalf("read_committed after a restart and a commit read %v, want %v", got, committed)
	}
}

// TestExactlyOnceConsumeTransformProduce runs franz-go's
// GroupTransactSession, which reads from one topic and writes to another
// with the group's offsets committed in the same transaction: every input
// record comes out once, the group's offsets are at the end, and an
// aborted round changes neither.
func TestExactlyOnceConsumeTransformProduce(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("in")))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, topic := range []string{"in", "out"} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range values("r", 40) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("eos"), kgo.DefaultProduceTopic("out"),
		kgo.ConsumerGroup("eos-group"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	consumed, rounds := 0, 0
	for consumed < 40 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := s.PollFetches(pctx)
		pcancel()
		if fs.NumRecords() == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			t.Fatal(err)
		}
		abort := rounds == 0 // the first round is thrown away: read again
		fs.EachRecord(func(r *kgo.Record) {
			v := strings.ToUpper(string(r.Value))
			if abort {
				v = "aborted-" + v
			}
			s.Produce(ctx, &kgo.Record{Value: []byte(v)}, nil)
		})
		try := kgo.TryCommit
		if abort {
			try = kgo.TryAbort
		}
		ok, err := s.End(ctx, try)
		if err != nil {
			t.Fatalf("end round %d: %v", rounds, err)
		}
		if ok && !abort {
			consumed += fs.NumRecords()
		}
		rounds++
	}
	want := values("R", 40)
	if got := kafkatest.ReadValues(t, addr, "out", true, 40); !slices.Equal(got, want) {
		t.Fatalf("read_committed of the output: %v, want each input once, upper-cased: %v", got, want)
	}
	if total := kafkatest.CommittedTotal(ctx, t, adm, "eos-group"); total != 40 {
		t.Fatalf("the group's committed offsets add up to %d, want 40", total)
	}
}

// TestLateTransactionalBatchIsRefused: a transactional batch that reaches
// a partition after its transaction ended (a delayed retry) is refused
// with INVALID_TXN_STATE instead of opening a transaction that no marker
// would end; the last stable offset stays at the high watermark.
func TestLateTransactionalBatchIsRefused(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "late"); err != nil {
		t.Fatal(err)
	}
	id := "late-tx"
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = &id, 60000
	ipr, err := ip.RequestWith(ctx, cl)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("init: %v %+v", err, ipr)
	}
	produce := func(seq int32) int16 {
		t.Helper()
		batch := segmenttest.Batch{Idempotent: true, Transactional: true, ProducerID: ipr.ProducerID, ProducerEpoch: ipr.ProducerEpoch,
			BaseSequence: seq, Records: []segmenttest.Record{{Value: []byte("v")}}}.Build()
		req := kmsg.NewPtrProduceRequest()
		req.TransactionID, req.Acks, req.TimeoutMillis = &id, -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "late", TopicID: idOf(t, cl, "late"), Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(0); code != kerr.InvalidTxnState.Code {
		t.Fatalf("a batch before AddPartitionsToTxn: code %d, want INVALID_TXN_STATE", code)
	}
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = id, ipr.ProducerID, ipr.ProducerEpoch
	ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "late", Partitions: []int32{0}}}
	if apr, err := ap.RequestWith(ctx, cl); err != nil || apr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("add partitions: %v %+v", err, apr)
	}
	if code := produce(0); code != 0 {
		t.Fatalf("a batch of the open transaction: code %d", code)
	}
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = id, ipr.ProducerID, ipr.ProducerEpoch, false
	if etr, err := et.RequestWith(ctx, cl); err != nil || etr.ErrorCode != 0 {
		t.Fatalf("abort: %v %+v", err, etr)
	}
	if code := produce(1); code != kerr.InvalidTxnState.Code {
		t.Fatalf("a batch after the abort: code %d, want INVALID_TXN_STATE", code)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.IsolationLevel = 1
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "late", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1}}}}
	lor, err := lo.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if off := lor.Topics[0].Partitions[0].Offset; off != 2 {
		t.Fatalf("read_committed end offset %d, want 2 (the batch and the abort marker)", off)
	}
}

// TestConcurrentTransactions: eight transactional producers share four
// partitions, each committing and aborting transactions in turn, while a
// read_committed consumer reads: it gets every committed record once and
// no aborted one. (With the race detector, this is also the test for the
// locks a transaction's end takes against produce and fetch.)
func TestConcurrentTransactions(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "shared"); err != nil {
		t.Fatal(err)
	}
	const producers, rounds, perTxn = 8, 20, 4
	errs := make(chan error, producers)
	for w := range producers {
		go func() {
			p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(fmt.Sprintf("shared-%d", w)), kgo.DefaultProduceTopic("shared"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			for r := range rounds {
				if err := p.BeginTransaction(); err != nil {
					errs <- err
					return
				}
				commit := r%2 == 0
				for i := range perTxn {
					v := fmt.Sprintf("w%d-r%02d-%d-%v", w, r, i, commit)
					if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: int32((w + i) % 4)}).FirstErr(); err != nil {
						errs <- err
						return
					}
				}
				end := kgo.TryAbort
				if commit {
					end = kgo.TryCommit
				}
				if err := p.EndTransaction(ctx, end); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	want := producers * rounds / 2 * perTxn
	cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("shared"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond)))
	defer cons.Close()
	seen := map[string]bool{}
	done := 0
	for (len(seen) < want || done < producers) && ctx.Err() == nil {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if strings.HasSuffix(v, "false") {
				t.Errorf("read an aborted record: %s", v)
			}
			if seen[v] {
				t.Errorf("read %s twice", v)
			}
			seen[v] = true
		})
		pcancel()
	}
	if len(seen) != want {
		t.Fatalf("read %d committed records, want %d", len(seen), want)
	}
}

// TestReadCommittedAtEveryMoment: while eight producers commit and abort
// transactions on four shared partitions, a raw read_committed fetcher
// applies each response's aborted transactions as clients do (a
// producer's batches from an aborted transaction's first offset are
// skipped until its abort marker) and must never be left with an aborted
// record. It caught the abort being listed after the stable offset had
// already moved past its batches, which kgo's consumer hit about every
// second run of TestConcurrentTransactions.
func TestReadCommittedAtEveryMoment(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, nil, "moment"); err != nil {
		t.Fatal(err)
	}
	const producers, rounds = 8, 20
	errs := make(chan error, producers)
	for w := range producers {
		go func() {
			errs <- func() error {
				p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(fmt.Sprintf("moment-%d", w)), kgo.DefaultProduceTopic("moment"),
					kgo.RecordPartitioner(kgo.ManualPartitioner()))
				if err != nil {
					return err
				}
				defer p.Close()
				for r := range rounds {
					if err := p.BeginTransaction(); err != nil {
						return err
					}
					commit := r%2 == 0
					for i := range int32(4) {
						v := fmt.Sprintf("w%d-r%02d-%d-%v", w, r, i, commit)
						if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: (int32(w) + i) % 4}).FirstErr(); err != nil {
							return err
						}
					}
					if err := p.EndTransaction(ctx, map[bool]kgo.TransactionEndTry{true: kgo.TryCommit, false: kgo.TryAbort}[commit]); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	var offsets [4]int64
	moment := idOf(t, cl, "moment")
	fetch := func() {
		req := kmsg.NewPtrFetchRequest()
		req.IsolationLevel, req.MaxWaitMillis, req.MaxBytes = 1, 20, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = "moment", moment
		for p := range int32(4) {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, offsets[p], 1<<20
			ft.Partitions = append(ft.Partitions, fp)
		}
		req.Topics = []kmsg.FetchRequestTopic{ft}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		for _, rp := range resp.Topics[0].Partitions {
			aborted := map[int64][]int64{}
			for _, a := range rp.AbortedTransactions {
				aborted[a.ProducerID] = append(aborted[a.ProducerID], a.FirstOffset)
			}
			for pid := range aborted {
				slices.Sort(aborted[pid])
			}
			for data := rp.RecordBatches; len(data) > 0; {
				h, err := segment.ParseHeader(data)
				if err != nil || h.Size() > len(data) {
					t.Fatalf("p%d: a bad batch in a fetch response: %v", rp.Partition, err)
				}
				batch := data[:h.Size()]
				data = data[h.Size():]
				offsets[rp.Partition] = h.LastOffset() + 1
				skip := h.Transactional() && len(aborted[h.ProducerID]) > 0 && h.BaseOffset >= aborted[h.ProducerID][0]
				if h.Control() {
					if typ, _ := segment.ControlType(batch); skip && typ == segment.ControlAbort {
						aborted[h.ProducerID] = aborted[h.ProducerID][1:]
					}
					continue
				}
				if skip {
					continue
				}
				recs, err := segment.DecodeRecords(batch, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if v := string(recs[0].Value); strings.HasSuffix(v, "false") {
					t.Fatalf("p%d: read_committed left aborted %s at %d (HW %d, LSO %d, aborted %v)", rp.Partition, v, h.BaseOffset,
						rp.HighWatermark, rp.LastStableOffset, rp.AbortedTransactions)
				}
			}
		}
	}
	for done := 0; done < producers; {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
		default:
			fetch()
		}
	}
	fetch()
}
