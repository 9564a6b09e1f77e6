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
	onBothPaths(t, testVoterWithANewDisk)
}

func testVoterWithANewDisk(t *testing.T, extra ...string) {
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
	tc.cmds[renewed].Process.Signal(syscall.SIGKILL)
	tc.cmds[renewed].Wait()
	if err := os.RemoveAll(tc.dirs[renewed]); err != nil {
		t.Fatal(err)
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
