package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/kafkatest"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestClusterTransactions: three processes; a transactional producer
// writes to partitions led by every node, committing and aborting: the
// coordinator (the group coordinator's node) writes the markers of the
// partitions other nodes lead through them, and read_committed consumers
// of any node read the committed records only. A transactional batch that
// the coordinator did not have added to its transaction is refused by the
// partition's leader on another node. Both metadata paths.
func TestClusterTransactions(t *testing.T) {
	t.Run("fast-path", func(t *testing.T) { testClusterTransactions(t) })
	t.Run("raft-fallback", func(t *testing.T) { testClusterTransactions(t, "--disable-metadata-wal") })
}

func testClusterTransactions(t *testing.T, extra ...string) {
	tc := startCluster(t, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seeds := kgo.SeedBrokers(tc.kafka[1], tc.kafka[2], tc.kafka[3])
	cl := kclient(t, seeds)
	adm := kadm.NewClient(cl)
	const parts = 6
	for {
		resp, err := adm.CreateTopic(ctx, parts, 1, nil, "ctx")
		if err == nil && resp.Err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create: %v %v", err, resp.Err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leaders := map[int32]int32{}
	var ctxID [16]byte
	for len(leaders) < parts && ctx.Err() == nil {
		md, err := adm.Metadata(ctx, "ctx")
		if err == nil {
			ctxID = md.Topics["ctx"].ID
			for _, p := range md.Topics["ctx"].Partitions {
				if p.Leader > 0 {
					leaders[p.Partition] = p.Leader
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	nodes := map[int32]bool{}
	for _, l := range leaders {
		nodes[l] = true
	}
	if len(nodes) < 2 {
		t.Fatalf("partition leaders %v: want several nodes", leaders)
	}

	p := kclient(t, seeds, kgo.TransactionalID("cluster-tx"), kgo.DefaultProduceTopic("ctx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	inTxn := func(prefix string, commit bool) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range int32(parts) {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s-%d", prefix, i), Partition: i}).FirstErr(); err != nil {
				t.Fatalf("produce in a transaction: %v", err)
			}
		}
		end := kgo.TryAbort
		if commit {
			end = kgo.TryCommit
		}
		if err := p.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end (commit %v): %v", commit, err)
		}
	}
	inTxn("a", true)
	inTxn("x", false)
	inTxn("b", true)
	var want []string
	for _, prefix := range []string{"a", "b"} {
		for i := range parts {
			want = append(want, fmt.Sprintf("%s-%d", prefix, i))
		}
	}
	for id := 1; id <= 3; id++ {
		if got := kafkatest.ReadValues(t, tc.kafka[id], "ctx", true, len(want)); !slices.Equal(got, want) {
			t.Fatalf("read_committed through node %d: %v, want %v", id, got, want)
		}
	}

	// Exactly once from one topic to another, the group's offsets in the
	// transactions (the group and transaction coordinator is one node).
	for _, topic := range []string{"eos-in", "eos-out"} {
		if resp, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, resp.Err)
		}
	}
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "eos-in", Value: fmt.Appendf(nil, "r%02d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := kgo.NewGroupTransactSession(seeds, kgo.TransactionalID("cluster-eos"), kgo.DefaultProduceTopic("eos-out"),
		kgo.ConsumerGroup("cluster-eos"), kgo.ConsumeTopics("eos-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for done := 0; done < 30 && ctx.Err() == nil; {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := s.PollFetches(pctx)
		pcancel()
		if fs.NumRecords() == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { s.Produce(ctx, &kgo.Record{Value: bytes.ToUpper(r.Value)}, nil) })
		if committed, err := s.End(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("end: %v", err)
		} else if committed {
			done += fs.NumRecords()
		}
	}
	var upper []string
	for i := range 30 {
		upper = append(upper, fmt.Sprintf("R%02d", i))
	}
	if got := kafkatest.ReadValues(t, tc.kafka[2], "eos-out", true, 30); !slices.Equal(got, upper) {
		t.Fatalf("exactly once through the cluster: %v, want %v", got, upper)
	}
	if total := kafkatest.CommittedTotal(ctx, t, adm, "cluster-eos"); total != 30 {
		t.Fatalf("the group's offsets add up to %d, want 30", total)
	}

	// A transactional batch whose transaction did not add the partition.
	id := "cluster-late"
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = &id, 60000
	ipr, err := ip.RequestWith(ctx, cl)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("init: %v %+v", err, ipr)
	}
	batch := segmenttest.Batch{Idempotent: true, Transactional: true, ProducerID: ipr.ProducerID, ProducerEpoch: ipr.ProducerEpoch,
		Records: []segmenttest.Record{{Value: []byte("late")}}}.Build()
	for part, leader := range leaders {
		req := kmsg.NewPtrProduceRequest()
		req.TransactionID, req.Acks, req.TimeoutMillis = &id, -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "ctx", TopicID: ctxID, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: part, Records: batch}}}}
		resp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
			t.Fatalf("an unadded transactional batch to ctx-%d on node %d: code %d, want INVALID_TXN_STATE", part, leader, code)
		}
	}
}

// TestClusterTransactionCoordinatorKilled: the transaction coordinator's
// node (node 1, the lowest id) is SIGKILLed while a producer commits
// transactions over partitions of all three nodes; after it restarts, a
// new incarnation of the producer commits again. Read through another
// node with read_committed: every acknowledged transaction whole, the one
// in flight at the kill whole or not at all, nothing else.
func TestClusterTransactionCoordinatorKilled(t *testing.T) {
	tc := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seeds := kgo.SeedBrokers(tc.kafka[1], tc.kafka[2], tc.kafka[3])
	adm := kadm.NewClient(kclient(t, seeds))
	const parts = 3
	for {
		resp, err := adm.CreateTopic(ctx, parts, 1, nil, "ckill")
		if err == nil && resp.Err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create: %v %v", err, resp.Err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	newProducer := func() *kgo.Client {
		return kclient(t, seeds, kgo.TransactionalID("ckill-tx"), kgo.DefaultProduceTopic("ckill"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestRetries(3), kgo.RetryTimeout(2*time.Second))
	}
	commitRound := func(p *kgo.Client, n int) error {
		if err := p.BeginTransaction(); err != nil {
			return err
		}
		for i := range int32(parts) {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "t%03d-%d", n, i), Partition: i}).FirstErr(); err != nil {
				return err
			}
		}
		return p.EndTransaction(ctx, kgo.TryCommit)
	}
	acked := map[int]bool{}
	p := newProducer()
	n := 0
	for ; n < 20; n++ { // transactions before the kill, all acknowledged
		if err := commitRound(p, n); err != nil {
			t.Fatalf("transaction %d: %v", n, err)
		}
		acked[n] = true
	}
	inFlight := n
	done := make(chan error, 1)
	go func() { done <- commitRound(p, inFlight) }()
	time.Sleep(5 * time.Millisecond)
	tc.cmds[1].Process.Signal(syscall.SIGKILL)
	tc.cmds[1].Wait()
	p.Close() // abandoned with whatever it had in flight
	if err := <-done; err == nil {
		acked[inFlight] = true
	}
	tc.start(1)

	// A new incarnation, once the coordinator is back, ends what was left
	// open and commits one more.
	n = inFlight + 1
	p2 := newProducer()
	for {
		err := commitRound(p2, n)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("a transaction after the coordinator's restart: %v", err)
		}
		p2.Close()
		time.Sleep(500 * time.Millisecond)
		p2 = newProducer()
	}
	acked[n] = true

	read := map[int]int{}
	for _, v := range kafkatest.ReadValues(t, tc.kafka[2], "ckill", true, len(acked)*parts) {
		var round, i int
		fmt.Sscanf(v, "t%03d-%d", &round, &i)
		read[round]++
	}
	for round := range acked {
		if read[round] != parts {
			t.Errorf("acknowledged transaction %d: %d of %d records read", round, read[round], parts)
		}
	}
	for round, c := range read {
		switch {
		case acked[round]:
		case round != inFlight:
			t.Errorf("transaction %d was never committed, yet %d records of it were read", round, c)
		case c != parts:
			t.Errorf("transaction %d, in flight at the kill, was read in part: %d of %d records", round, c, parts)
		}
	}
}
