package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/internal/testaddr"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// freeAddr returns a loopback address nothing listens on, for a child
// process to listen on (testaddr: below the ephemeral range, TCP and UDP).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testaddr.Processes.Free(t)
}

// syncBuffer is a strings.Builder a child's output can be copied into
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode runs `chronik start` and waits until it accepts connections.
func startNode(t testing.TB, dataDir, addr string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"start", "--data-dir", dataDir, "--kafka-addr", addr}, extra...)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The start-up line comes right after the listener opens, and the
	// kernel accepts connections from then on: wait for both.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !strings.Contains(stderr.String(), "chronik started") {
			continue
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd
		}
	}
	t.Fatalf("chronik did not start:\n%s", stderr.String())
	return nil
}

func produceN(t *testing.T, addr, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := from; i < from+n; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

func consumeAll(t *testing.T, addr, topic string, want int) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume after %d: %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	return seen
}

// TestStartProduceConsumeRestart runs the real binary: produce, SIGTERM
// (clean exit 0, the data directory marked clean), restart (the mark
// taken), the records are there; produce more, SIGKILL (no mark), restart,
// every acknowledged record is there.
func TestStartProduceConsumeRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	node := startNode(t, dir, addr)
	produceN(t, addr, "events", 0, 50)
	consumeAll(t, addr, "events", 50)
	stopCleanly(t, node, dir, syscall.SIGTERM)
	mark := filepath.Join(dir, "clean-shutdown")

	node = startNode(t, dir, addr)
	if _, err := os.Stat(mark); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the clean-shutdown mark outlived the start: %v", err)
	}
	produceN(t, addr, "events", 50, 50)
	node.Process.Signal(syscall.SIGKILL)
	node.Wait()
	if _, err := os.Stat(mark); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a clean-shutdown mark after SIGKILL: %v", err)
	}

	startNode(t, dir, addr)
	seen := consumeAll(t, addr, "events", 100)
	for i := range 100 {
		if !seen[fmt.Sprint(i)] {
			t.Fatalf("record %d lost", i)
		}
	}
}

func TestStartRefusesALockedDataDir(t *testing.T) {
	dir := t.TempDir()
	startNode(t, dir, freeAddr(t))
	_, errOut, code := run(t, "start", "--data-dir", dir, "--kafka-addr", freeAddr(t))
	if code != 1 || !strings.Contains(errOut, "is in use by process") {
		t.Fatalf("second node on one data dir: exit %d, %q", code, errOut)
	}
}

// TestStartRefusesADamagedClusterID: a cluster-id file that holds no
// cluster id stops the start with a sentence saying what to do, rather than
// serving under a garbled id.
func TestStartRefusesADamagedClusterID(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster-id"), []byte("\x00\xffjunk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "start", "--data-dir", dir, "--kafka-addr", freeAddr(t))
	if code != 1 || !strings.Contains(errOut, "cluster-id is damaged") || !strings.Contains(errOut, "restore it") {
		t.Fatalf("a damaged cluster-id: exit %d, %q", code, errOut)
	}
}

// TestStartKeepsItsNodeID: a data directory started as node 1 refuses to
// start as node 2, saying which id it belongs to; as node 1 it starts. A
// damaged node-id file is refused too.
func TestStartKeepsItsNodeID(t *testing.T) {
	dir := t.TempDir()
	cmd := startNode(t, dir, freeAddr(t), "--node-id", "1")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	_, errOut, code := run(t, "start", "--data-dir", dir, "--kafka-addr", freeAddr(t), "--node-id", "2")
	if code != 1 || !strings.Contains(errOut, "belongs to node 1") || !strings.Contains(errOut, "start it with --node-id 1") {
		t.Fatalf("node 1's data directory started as node 2: exit %d, %q", code, errOut)
	}
	startNode(t, dir, freeAddr(t), "--node-id", "1")

	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, "node-id"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, "start", "--data-dir", damaged, "--kafka-addr", freeAddr(t))
	if code != 1 || !strings.Contains(errOut, "node-id is damaged") {
		t.Fatalf("a damaged node-id file: exit %d, %q", code, errOut)
	}
}

// FuzzParseNodeID: a node-id file reads as a node id of 0 or more that
// writes back as it read, or is refused.
func FuzzParseNodeID(f *testing.F) {
	f.Add([]byte("1\n"))
	f.Add([]byte(" 2147483647 "))
	f.Add([]byte("-1"))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := parseNodeID(b)
		if !ok {
			return
		}
		if again, ok := parseNodeID([]byte(strconv.Itoa(int(id)) + "\n")); id < 0 || !ok || again != id {
			t.Fatalf("parseNodeID(%q) = %d", b, id)
		}
	})
}

// TestClusterIDSurvivesPowerLoss: the cluster id a first start made is
// there, whole, after a power loss (only what was synced survives), and
// the next start reads the same one.
func TestClusterIDSurvivesPowerLoss(t *testing.T) {
	fsys := segmenttest.NewMemFS()
	if err := fsys.MkdirAll("data", 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := loadClusterID(fsys, "data")
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadClusterID(fsys.Crash(nil), "data")
	if err != nil || again != id {
		t.Fatalf("after a power loss the cluster id is %q (%v), was %q", again, err, id)
	}
}

func TestParseClusterID(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef0123456789abcdef\n": "0123456789abcdef0123456789abcdef",
		"MkU3OEVBNTcwNTJENDM2Qk":             "MkU3OEVBNTcwNTJENDM2Qk",
		"":                                   "",
		"a b":                                "",
		"id\x00":                             "",
		strings.Repeat("a", 65):              "",
	} {
		if got, ok := parseClusterID([]byte(in)); got != want || ok != (want != "") {
			t.Errorf("parseClusterID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzParseClusterID: any cluster-id file gives an id Kafka clients can
// be told, or none.
func FuzzParseClusterID(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef\n"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := parseClusterID(b)
		if ok != (id != "") || len(id) > 64 || strings.ContainsAny(id, " \n\x00") || !utf8.ValidString(id) {
			t.Fatalf("parseClusterID(%q) = %q, %v", b, id, ok)
		}
	})
}

// TestStartRefusesBadFlags: a bad flag value stops the start with exit
// status 2 and a sentence naming the flag and what it takes, before the
// data directory is touched.
func TestStartRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		flag, value, want string
		more              []string
	}{
		{"--log-level", "loud", "use debug, info, warn or error", nil},
		{"--wal-profile", "extreme", "extreme", nil},
		{"--node-id", "-1", "--node-id must be 0 or more", nil},
		{"--group-initial-rebalance-delay", "-1s", "must not be negative", nil},
		{"--offsets-retention", "30s", "--offsets-retention must be at least 1m", nil},
		{"--producer-id-expiration", "0s", "--producer-id-expiration must be at least 1m", nil},
		{"--transactional-id-expiration", "59s", "--transactional-id-expiration must be at least 1m", nil},
		{"--transaction-max-timeout", "48h", "--transaction-max-timeout must be between 1s and --producer-id-expiration", nil},
		{"--default-partitions", "0", "--default-partitions must be between 1 and 10000", nil},
		{"--default-partitions", "10001", "--default-partitions must be between 1 and 10000", nil},
		{"--max-request-bytes", "100", "--max-request-bytes must be between", nil},
		{"--max-fetch-memory-bytes", "1000", "--max-fetch-memory-bytes (1000) must be at least 1048576", nil},
		{"--max-queued-request-bytes", "1000", "--max-queued-request-bytes (1000) must be at least --max-request-bytes", nil},
		{"--connections-max-idle-ms", "-1", "--connections-max-idle-ms -1 must be between 0", nil},
		{"--advertised-addr", "0.0.0.0:9092", "set --advertised-addr", nil},
		{"--voters", "1,0,2", "0 is not a voter's node id", nil},
		{"--voters", "1,x", `"x" is not a node id`, nil},
		{"--voters", "1,2,2", "node 2 is listed twice", nil},
		{"--voters", "2,3", "--node-id 1 is not among --voters 2,3: a node that is not a voter serves as a broker", nil},
		{"--voters", "0,1", "node id 0 cannot be a voter", []string{"--node-id", "0"}},
		{"--bootstrap-expect", "3", "--node-id 0 cannot be a node of a cluster", []string{"--node-id", "0"}},
		{"--bootstrap-expect", "-1", "--bootstrap-expect is a positive count", nil},
		{"--metadata-acks", "all", `--metadata-acks "all": use quorum or leader`, nil},
		{"--http-addr", "bad", `--http-addr "bad": not host:port`, nil},
		{"--kafka-addr", "127.0.0.1:99999", `port "99999" is not a number from 0 to 65535`, nil},
		{"--advertised-addr", "kafka1:0", "must be host:port that clients can reach", nil},
		{"--replication-addr", "0.0.0.0:9291", "must be host:port that the other nodes can reach", []string{"--voters", "1"}},
		{"--gossip-addr", "nonsense", `--gossip-addr "nonsense": not host:port`, []string{"--voters", "1"}},
		{"--join", ":::", "is not the host:port of another node's gossip address", []string{"--voters", "1"}},
		{"--join", "10.0.0.1:7946,", `"" is not the host:port`, []string{"--voters", "1"}},
		{"--fence-after", "-1s", "--fence-after -1s: give how long", []string{"--voters", "1"}},
	} {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"start", "--data-dir", dir, "--kafka-addr", "127.0.0.1:1", tc.flag, tc.value}, tc.more...)
			_, errOut, code := run(t, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("start %s %s: exit %d, stderr %q; want exit 2 and %q", tc.flag, tc.value, code, errOut, tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Fatal("the refused start created its data directory")
			}
		})
	}
}

func TestMetricsAndHealth(t *testing.T) {
	dir, addr, httpAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	startNode(t, dir, addr, "--http-addr", httpAddr)
	produceN(t, addr, "m", 0, 5)
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	if body := get("/healthz"); body != "ok\n" {
		t.Fatalf("/healthz: %q", body)
	}
	body := get("/metrics")
	for _, want := range []string{"chronik_wal_syncs_total", "chronik_wal_failed_appends_total 0", "chronik_wal_failed_syncs_total 0", "chronik_metadata_offset", "go_goroutines", "chronik_fetch_memory_bytes", "chronik_kafka_queued_request_bytes", "chronik_kafka_queued_request_waits_total"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics has no %q", want)
		}
	}
	// Five records produced one at a time: at least five Produce requests
	// (a client may retry one).
	var produced int
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, `chronik_kafka_requests_total{api="Produce"} `); ok {
			produced, _ = strconv.Atoi(v)
		}
	}
	if produced < 5 {
		t.Fatalf("/metrics counts %d Produce requests, want at least 5:\n%s", produced, body)
	}
}

// TestSIGHUPStopsCleanly: a closed terminal (SIGHUP) stops the node as
// SIGTERM does: exit 0, the data directory marked clean, as the JVM's
// shutdown hooks stop a Kafka broker.
func TestSIGHUPStopsCleanly(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	node := startNode(t, dir, addr)
	produceN(t, addr, "hup", 0, 5)
	stopCleanly(t, node, dir, syscall.SIGHUP)
}

// stopCleanly sends sig to node and checks that it exits 0 within 10 s,
// its data directory dir marked clean.
func stopCleanly(t *testing.T, node *exec.Cmd, dir string, sig syscall.Signal) {
	t.Helper()
	node.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- node.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after %v: %v", sig, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10 s after %v", sig)
	}
	if _, err := os.Stat(filepath.Join(dir, "clean-shutdown")); err != nil {
		t.Fatalf("no clean-shutdown mark after %v: %v", sig, err)
	}
}
