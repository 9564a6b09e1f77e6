package segment_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// killBatch is the batch writer w appends as its i-th: the child and the
// parent build the same bytes from (w, i).
func killBatch(w, i int) []byte {
	size := 100 + (w*7919+i*104729)%4000
	v := bytes.Repeat([]byte(fmt.Sprintf("w%d-i%d|", w, i)), size/4+1)[:size]
	return segmenttest.Batch{BaseTimestamp: int64(i), Records: []segmenttest.Record{{Key: []byte(fmt.Sprint(w)), Value: v}}}.Build()
}

func killConfig() segment.Config {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.PreallocateBytes = 256 << 10
	cfg.RecoveryPointInterval = 5 * time.Millisecond
	return cfg
}

// TestKillChild is the child process of TestKillKeepsAcknowledged; it does
// nothing unless started by it.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("CHRONIK_KILL_CHILD_DIR")
	if dir == "" {
		t.Skip("child process of TestKillKeepsAcknowledged")
	}
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	l, err := st.Open("kill", 0, killConfig())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				a, err := l.Append(killBatch(w, i), 1, 1)
				if err == nil {
					err = a.Wait()
				}
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error", err)
				} else {
					fmt.Fprintln(out, "ack", a.Base, w, i)
				}
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKillKeepsAcknowledged starts a child process appending from eight
// goroutines on the real file system, SIGKILLs it, and checks that the
// reopened log holds every batch the child saw acknowledged.
func TestKillKeepsAcknowledged(t *testing.T) {
	if os.Getenv("CHRONIK_KILL_CHILD_DIR") != "" {
		t.Skip("in the child")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), "CHRONIK_KILL_CHILD_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		type ack struct{ base, w, i int }
		var acks []ack
		sc := bufio.NewScanner(stdout)
		killAt := 3000 + round*4000
		lockChecked := false
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "error") {
				cmd.Process.Kill()
				t.Fatalf("child: %s", line)
			}
			var a ack
			if _, err := fmt.Sscanf(line, "ack %d %d %d", &a.base, &a.w, &a.i); err != nil {
				continue
			}
			acks = append(acks, a)
			if !lockChecked {
				// The child holds the directory: a second opener is refused.
				_, err := segment.OpenStore(dir, segment.StoreOptions{})
				if !errors.Is(err, segment.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprint(cmd.Process.Pid)) {
					cmd.Process.Kill()
					t.Fatalf("second open of a held directory: %v", err)
				}
				lockChecked = true
			}
			if len(acks) == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		if len(acks) < killAt {
			t.Fatalf("child stopped after %d acks", len(acks))
		}

		st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.Open("kill", 0, killConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acks {
			b, err := l.Read(int64(a.base), 1, nil)
			want := stored(killBatch(a.w, a.i), int64(a.base), 1)
			if err != nil || !bytes.Equal(b, want) {
				t.Fatalf("round %d: acknowledged batch at %d (writer %d, #%d) lost after SIGKILL: %v", round, a.base, a.w, a.i, err)
			}
		}
		t.Logf("round %d: %d acknowledged batches survived SIGKILL; log end %d, %d segments", round, len(acks), l.EndOffset(), l.Segments())
		st.Close()
	}
}
