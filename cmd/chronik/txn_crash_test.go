package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSIGKILLMidTransactions kills the broker while a transactional
// producer commits transaction after transaction over two partitions, three
// times, restarting it each time; the producer carries on, or is abandoned
// mid-transaction and a new incarnation takes over. Transactions are
// atomic across the crashes: a
// read_committed consumer reads every transaction whose commit was
// acknowledged, and of the one in flight at a kill either all of its
// records or none; nothing else.
func TestSIGKILLMidTransactions(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	node := startNode(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(kclient(t, kgo.SeedBrokers(addr)))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	const perTxn = 6
	acked := map[int]bool{}    // transactions whose commit was answered
	inFlight := map[int]bool{} // the transaction being committed at a kill
	round := 0
	for kill := range 3 {
		p := kclient(t, kgo.SeedBrokers(addr), kgo.TransactionalID("crash-tx"), kgo.DefaultProduceTopic("tx"),
			kgo.RecordRetries(2), kgo.RequestRetries(2), kgo.RetryTimeout(time.Second))
		var killed atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !killed.Load() {
				n := round
				if err := p.BeginTransaction(); err != nil {
					return
				}
				inFlight[n] = true
				for i := range perTxn {
					if p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "t%03d-%d", n, i), Partition: int32(i % 2)}).FirstErr() != nil {
						return
					}
				}
				if p.EndTransaction(ctx, kgo.TryCommit) != nil {
					return
				}
				delete(inFlight, n)
				acked[n] = true
				round++
			}
		}()
		time.Sleep(time.Duration(300+200*kill) * time.Millisecond)
		killed.Store(true)
		node.Process.Signal(syscall.SIGKILL)
		node.Wait()
		if kill == 1 {
			// This incarnation is abandoned with its transaction: the next
			// one's InitProducerId ends it (a commit decided before the
			// kill is completed at the restart, anything else aborted).
			p.Close()
			<-done
			node = startNode(t, dir, addr)
		} else {
			// This one goes on: the broker is back at once (an idempotent
			// producer does not give up on records it may have sent).
			node = startNode(t, dir, addr)
			<-done
			p.Close()
		}
		round++ // the round in flight, if any, is never reused
	}
	if len(acked) < 3 {
		t.Fatalf("only %d transactions committed before the kills", len(acked))
	}

	// A new incarnation ends whatever was left open, and commits one more.
	p := kclient(t, kgo.SeedBrokers(addr), kgo.TransactionalID("crash-tx"), kgo.DefaultProduceTopic("tx"))
	defer p.Close()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range perTxn {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "t%03d-%d", round, i), Partition: int32(i % 2)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit after the restarts: %v", err)
	}
	acked[round] = true

	cons := kclient(t, kgo.SeedBrokers(addr), kgo.ConsumeTopics("tx"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cons.Close()
	read := map[int]int{} // transaction -> records read
	deadline := time.Now().Add(10 * time.Second)
	for read[round] < perTxn && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var n, i int
			fmt.Sscanf(string(r.Value), "t%03d-%d", &n, &i)
			read[n]++
		})
		pcancel()
	}
	for n := range acked {
		if read[n] != perTxn {
			t.Errorf("acknowledged transaction %d: %d of %d records read", n, read[n], perTxn)
		}
	}
	for n, c := range read {
		switch {
		case acked[n]:
		case !inFlight[n]:
			t.Errorf("transaction %d was never committed, yet %d records of it were read", n, c)
		case c != perTxn:
			t.Errorf("transaction %d, in flight at a kill, was read in part: %d of %d records", n, c, perTxn)
		}
	}
	t.Logf("%d transactions acknowledged; in flight at the kills: %v, of which read: %d", len(acked), inFlight, len(read)-len(acked))
}

func kclient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
