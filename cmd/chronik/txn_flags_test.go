package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionMaxTimeout: a producer asking for a one-hour transaction
// timeout (Flink's exactly-once sink does) is refused with
// INVALID_TRANSACTION_TIMEOUT by default (15 minutes, as Kafka), and
// served with --transaction-max-timeout 1h.
func TestTransactionMaxTimeout(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		want  error
	}{
		{nil, kerr.InvalidTransactionTimeout},
		{[]string{"--transaction-max-timeout", "1h"}, nil},
	} {
		dir, addr := t.TempDir(), freeAddr(t)
		startNode(t, dir, addr, tc.flags...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		p := kclient(t, kgo.SeedBrokers(addr), kgo.TransactionalID("hour"), kgo.TransactionTimeout(time.Hour),
			kgo.DefaultProduceTopic("hour"), kgo.AllowAutoTopicCreation())
		err := p.BeginTransaction()
		if err == nil {
			err = p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
		}
		if err == nil {
			err = p.EndTransaction(ctx, kgo.TryCommit)
		}
		p.Close()
		cancel()
		if !errors.Is(err, tc.want) && (tc.want != nil || err != nil) {
			t.Fatalf("flags %v: %v, want %v", tc.flags, err, tc.want)
		}
	}
}
