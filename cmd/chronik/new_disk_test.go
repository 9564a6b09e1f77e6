package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVoterWithANewDisk: a follower's data directory is wiped (a disk
// replaced) and the node started again with the same flags: it takes
// the cluster's metadata, ends its catching up, and votes again: with the
// controller then killed, it and the third node elect a new one. On both
// paths.
func TestVoterWithANewDisk(t *testing.T) {
	onBothPaths(t, func(t *testing.T, extra ...string) { testRenewedVoter(t, false, extra...) })
}

// TestNodeTakesItsMetadataAgain: only a follower's metadata log and Raft
// state are removed (what a node whose metadata log diverged from the
// cluster's tells the operator to do): it catches up as a node with a new
// disk does, votes again, and serves the records its partitions held.
func TestNodeTakesItsMetadataAgain(t *testing.T) {
	onBothPaths(t, func(t *testing.T, extra ...string) { testRenewedVoter(t, true, extra...) })
}

// testRenewedVoter: a follower is killed and its data directory wiped
// (keepPartitions: all but its partitions), then started again.
func testRenewedVoter(t *testing.T, keepPartitions bool, extra ...string) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	tc := startCluster(t, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients := [4]*kgo.Client{nil, tc.client(1), tc.client(2), tc.client(3)}
	controller := tc.controller(ctx, clients[1])
	for i := range 20 {
		if err := createThrough(ctx, clients[controller], controller, fmt.Sprintf("before-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	renewed := 1 + controller%3
	var led []string // topics whose partition the renewed node leads
	if keepPartitions {
		led = produceToEach(ctx, t, tc, clients[controller], controller, renewed, 20)
	}
	tc.cmds[renewed].Process.Signal(syscall.SIGKILL)
	tc.cmds[renewed].Wait()
	wipe := []string{tc.dirs[renewed]}
	if keepPartitions {
		wipe = []string{filepath.Join(tc.dirs[renewed], "__chronik_metadata-0"), filepath.Join(tc.dirs[renewed], "__raft")}
	}
	for _, dir := range wipe {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	tc.start(renewed)
	marker := filepath.Join(tc.dirs[renewed], "__raft", "catching-up")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		md, err := tc.metadata(ctx, clients[renewed], renewed)
		_, statErr := os.Stat(marker)
		if err == nil && len(topicSet(md)) >= 20 && os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d with a new disk: metadata %v, catching-up file %v", renewed, err, statErr)
		}
	}
	if keepPartitions {
		consumeOneEach(ctx, t, tc.kafka[renewed], led)
	}
	tc.cmds[controller].Process.Signal(syscall.SIGKILL)
	tc.cmds[controller].Wait()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := createThrough(ctx, clients[renewed], renewed, "after"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("with controller %d killed, a create through node %d: %v", controller, renewed, err)
		}
	}
	md, err := tc.metadata(ctx, clients[renewed], renewed)
	if err != nil || md.ControllerID == int32(controller) || !topicSet(md)["before-19"] {
		t.Fatalf("after the failover node %d says: %v, %v", renewed, md, err)
	}
}

// produceToEach produces one record to each topic before-00 .. before-(n-1)
// and returns those whose partition node id leads.
func produceToEach(ctx context.Context, t *testing.T, tc *testCluster, cl *kgo.Client, via, id, n int) []string {
	t.Helper()
	for i := range n {
		topic := fmt.Sprintf("before-%02d", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(topic)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	md, err := tc.metadata(ctx, cl, via)
	if err != nil {
		t.Fatal(err)
	}
	var led []string
	for _, mt := range md.Topics {
		// The internal topics are not the test's: __consumer_offsets is
		// led by the group coordinator, which may be node id.
		if !mt.IsInternal && len(mt.Partitions) == 1 && mt.Partitions[0].Leader == int32(id) {
			led = append(led, *mt.Topic)
		}
	}
	if len(led) == 0 {
		t.Fatalf("node %d leads none of the %d topics' partitions", id, n)
	}
	return led
}

// consumeOneEach reads, from the broker at addr, the one record each of
// topics holds: its name.
func consumeOneEach(ctx context.Context, t *testing.T, addr string, topics []string) {
	t.Helper()
	parts := map[string]map[int32]kgo.Offset{}
	for _, topic := range topics {
		parts[topic] = map[int32]kgo.Offset{0: kgo.NewOffset().AtStart()}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(parts))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got := map[string]bool{}
	for len(got) < len(topics) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of the %d records the node's partitions held: %v", len(got), len(topics), got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != r.Topic || r.Offset != 0 {
				t.Errorf("%s: record %q at offset %d", r.Topic, r.Value, r.Offset)
			}
			got[r.Topic] = true
		})
	}
}
