package main

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLogDumpDecodesInternalPartitions: after a broker committed a group's
// offset and a transaction, chronik log dump --records prints the records
// of __consumer_offsets-0 and __transaction_state-0 decoded.
func TestLogDumpDecodesInternalPartitions(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	node := startNode(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(kclient(t, kgo.SeedBrokers(addr)))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "dumped"); err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "dumped", Partition: 0, At: 7, LeaderEpoch: -1, Metadata: "m"})
	if resp, err := adm.CommitOffsets(ctx, "dump-group", offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	adm.Close()
	p := kclient(t, kgo.SeedBrokers(addr), kgo.TransactionalID("dump-tx"), kgo.DefaultProduceTopic("dumped"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	p.Close()
	node.Process.Signal(syscall.SIGTERM)
	node.Wait()

	out, errOut, code := run(t, "log", "dump", "--records", filepath.Join(dir, "__consumer_offsets-0"))
	if code != 0 || !strings.Contains(out, `offset group="dump-group" topic="dumped" partition=0 offset=7 leader_epoch=-1 metadata="m"`) {
		t.Fatalf("offsets dump exit %d, stderr %q:\n%s", code, errOut, out)
	}
	out, errOut, code = run(t, "log", "dump", "--records", filepath.Join(dir, "__transaction_state-0"))
	for _, state := range []string{"state=Empty", "state=Ongoing", "state=PrepareCommit", "state=CompleteCommit"} {
		if code != 0 || !strings.Contains(out, `transactional_id="dump-tx" producer=`) || !strings.Contains(out, state) {
			t.Fatalf("transaction state dump (want %s) exit %d, stderr %q:\n%s", state, code, errOut, out)
		}
	}
	if !strings.Contains(out, "partitions=[dumped:0]") {
		t.Fatalf("the transaction's partition is not shown:\n%s", out)
	}
	out, _, code = run(t, "log", "dump", "--records", filepath.Join(dir, "dumped-0"))
	if code != 0 || !strings.Contains(out, "control=COMMIT") || !strings.Contains(out, `value="v"`) {
		t.Fatalf("data partition dump exit %d:\n%s", code, out)
	}
}
