package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogDumpOfRaft: chronik log dump of a fallback-path node's Raft
// storage prints its term and vote and the entries, with the metadata
// changes they carry; a torn tail is damage (exit 3), and the file is
// left as it was.
func TestLogDumpOfRaft(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	tc := startCluster(t, "--disable-metadata-wal")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := tc.client(1)
	controller := tc.controller(ctx, cl)
	if err := createThrough(ctx, cl, controller, "dumped"); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 3; id++ {
		tc.cmds[id].Process.Signal(syscall.SIGTERM)
		tc.cmds[id].Wait()
	}
	dir := filepath.Join(tc.dirs[1], "__raft")
	out, errOut, code := run(t, "log", "dump", dir)
	if code != 0 || !strings.HasPrefix(out, "file=") || !strings.Contains(out, " term=") ||
		!strings.Contains(out, "empty") || !strings.Contains(out, "TopicCreated key=topic/dumped") {
		t.Fatalf("dump of %s: exit %d, %s\n%s", dir, code, errOut, out)
	}

	wal := filepath.Join(dir, "raft.wal")
	f, err := os.OpenFile(wal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0, 40, 1, 2, 3}) // a record cut short
	f.Close()
	before, _ := os.ReadFile(wal)
	out, errOut, code = run(t, "log", "dump", wal)
	if code != exitDamaged || !strings.Contains(out, "damage position=") || !strings.Contains(errOut, "cuts a torn tail off") ||
		!strings.Contains(out, "TopicCreated key=topic/dumped") {
		t.Fatalf("dump of a torn %s: exit %d, %s\n%s", wal, code, errOut, out)
	}
	if after, _ := os.ReadFile(wal); string(after) != string(before) {
		t.Fatal("the dump changed the file")
	}
}
