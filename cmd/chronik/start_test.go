package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// freeAddr returns a loopback address nothing listens on (TCP or UDP:
// gossip uses both), for a child process to listen on. It is taken below
// the kernel's ephemeral range (32768 up): a port from that range, closed
// and handed to a child, could meanwhile become the local port of any
// outgoing connection, and the child failed with "address already in
// use". No port is handed out twice by one test process.
func freeAddr(t testing.TB) string {
	t.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if handed[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		handed[port] = true
		return addr
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

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
// (clean exit 0), restart, the records are there; produce more, SIGKILL,
// restart, every acknowledged record is there.
func TestStartProduceConsumeRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	node := startNode(t, dir, addr)
	produceN(t, addr, "events", 0, 50)
	consumeAll(t, addr, "events", 50)
	node.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- node.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}

	node = startNode(t, dir, addr)
	produceN(t, addr, "events", 50, 50)
	node.Process.Signal(syscall.SIGKILL)
	node.Wait()

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

// TestKcat drives the broker with librdkafka 2.0 through kcat: metadata,
// produce with every codec, consume, group consume.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CHRONIK_REQUIRE_KCAT") != "" {
			t.Fatal("kcat is not installed")
		}
		t.Skip("kcat is not installed (.ci/run installs it)")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	startNode(t, dir, addr, "--group-initial-rebalance-delay", "0s")
	kc := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kcat, append([]string{"-b", addr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("line-%d", i))
	}
	kc(strings.Join(lines, "\n")+"\n", "-P", "-t", "kcat-topic")
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		kc("compressed-"+codec+"\n", "-P", "-t", "kcat-topic", "-z", codec)
	}
	out := kc("", "-C", "-t", "kcat-topic", "-o", "beginning", "-e", "-q")
	for _, want := range append(lines, "compressed-gzip", "compressed-snappy", "compressed-lz4", "compressed-zstd") {
		if !strings.Contains(out, want+"\n") {
			t.Fatalf("kcat consumed no %q:\n%s", want, out)
		}
	}
	md := kc("", "-L")
	if !strings.Contains(md, "topic \"kcat-topic\"") || !strings.Contains(md, "broker 1 at "+addr) {
		t.Fatalf("kcat -L:\n%s", md)
	}

	// A balanced consumer (-G): it reads everything, commits when it
	// closes, and the next one in the group starts after that.
	out = kc("", "-G", "kcat-group", "-X", "auto.offset.reset=earliest", "-e", "-q", "kcat-topic")
	if n := strings.Count(out, "\n"); n != 24 {
		t.Fatalf("kcat -G read %d lines, want 24:\n%s", n, out)
	}
	if out = kc("", "-G", "kcat-group", "-e", "-q", "kcat-topic"); out != "" {
		t.Fatalf("the group's second consumer re-read committed records:\n%s", out)
	}
	kc("after-commit\n", "-P", "-t", "kcat-topic")
	if out = kc("", "-G", "kcat-group", "-e", "-q", "kcat-topic"); out != "after-commit\n" {
		t.Fatalf("the group's third consumer read %q, want only the new record", out)
	}
}

// TestKafkaPython drives the broker with kafka-python 2.0, an old client
// that negotiates its versions: admin, produce, group consume and commit.
func TestKafkaPython(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, where the python3-kafka package installs
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		if os.Getenv("CHRONIK_REQUIRE_KCAT") != "" {
			t.Fatal("kafka-python is not installed (apt-get install python3-kafka)")
		}
		t.Skip("kafka-python is not installed (.ci/run installs python3-kafka)")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	startNode(t, dir, addr, "--group-initial-rebalance-delay", "0s")
	out, err := exec.Command(python, "testdata/kafka_python.py", addr, "py-topic", "py-group").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("kafka-python: %v\n%s", err, out)
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
	for _, want := range []string{"chronik_wal_syncs_total", "chronik_metadata_offset", "go_goroutines"} {
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
