package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chronik-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "chronik")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the real binary and returns its stdout, stderr and exit status.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

func writeLog(t *testing.T, n int) string {
	t.Helper()
	data := t.TempDir()
	st, err := segment.OpenStore(data, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Open("orders", 0, segment.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		a, err := l.Append(segmenttest.Values(int64(i), "v"), 0, 1)
		if err != nil || a.Wait() != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	return filepath.Join(data, "orders-0")
}

func TestHelp(t *testing.T) {
	out, _, code := run(t, "--help")
	if code != 0 || !strings.Contains(out, "log") || !strings.Contains(out, "Kafka") {
		t.Fatalf("help (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, "log", "dump", "--help")
	if code != 0 || !strings.Contains(out, "--records") || !strings.Contains(out, "Examples:") {
		t.Fatalf("log dump help (exit %d):\n%s", code, out)
	}
}

func TestLogDump(t *testing.T) {
	dir := writeLog(t, 5)
	out, errOut, code := run(t, "log", "dump", "--records", dir)
	if code != 0 || strings.Count(out, "\nbatch ") != 5 || strings.Count(out, "  record ") != 5 {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	out, _, code = run(t, "log", "dump", "--json", "--from", "3", filepath.Join(dir, "00000000000000000000.log"))
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, `{"type":"batch"`) {
		t.Fatalf("json dump exit %d:\n%s", code, out)
	}
}

func TestLogDumpErrors(t *testing.T) {
	dir := writeLog(t, 3)
	seg := filepath.Join(dir, "00000000000000000000.log")
	b, _ := os.ReadFile(seg)
	b[segment.BatchHeaderSize+2] ^= 0xff
	os.WriteFile(seg, b, 0o644)
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"damage", []string{"log", "dump", dir}, 3, "found damage in 1 place"},
		{"no path", []string{"log", "dump"}, 2, "needs exactly one PATH"},
		{"missing path", []string{"log", "dump", filepath.Join(dir, "nope")}, 1, "no such file"},
		{"not a log file", []string{"log", "dump", filepath.Join(dir, "recovery-point")}, 1, "is not a segment .log file"},
		{"empty directory", []string{"log", "dump", t.TempDir()}, 1, "holds no segment files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.inStderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.inStderr)
			}
			if strings.Contains(errOut, "in use by") {
				t.Fatalf("stderr %q: no broker holds the data directory", errOut)
			}
		})
	}

	// A broker holds the data directory: damage may be a write in flight.
	lock, err := segment.LockDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	for _, path := range []string{dir, seg} {
		_, errOut, code := run(t, "log", "dump", path)
		if code != 3 || !strings.Contains(errOut, fmt.Sprintf("in use by process %d", os.Getpid())) {
			t.Fatalf("dump of %s while the directory is locked: exit %d, stderr %q", path, code, errOut)
		}
	}
}

func writeMetadata(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	st, err := segment.OpenStore(data, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, evs := range [][]eventlog.Event{
		{&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID()}},
		{&eventlog.TopicCreated{Name: "orders", TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1},
			&eventlog.PartitionChanged{Topic: "orders", Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
	} {
		if _, err := l.Append(evs...); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	st.Close()
	return data
}

func TestMetadataDumpAndState(t *testing.T) {
	data := writeMetadata(t)
	out, errOut, code := run(t, "log", "dump", filepath.Join(data, "__chronik_metadata-0"))
	if code != 0 || !strings.Contains(out, "offset=1 ") || !strings.Contains(out, "TopicCreated key=topic/orders") {
		t.Fatalf("metadata dump exit %d, stderr %q:\n%s", code, errOut, out)
	}
	out, _, code = run(t, "log", "dump", "--type", "PartitionChanged", "--json", filepath.Join(data, "__chronik_metadata-0"))
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"type":"PartitionChanged"`) {
		t.Fatalf("filtered dump exit %d:\n%s", code, out)
	}
	_, errOut, code = run(t, "log", "dump", "--type", "Nope", filepath.Join(data, "__chronik_metadata-0"))
	if code != 2 || !strings.Contains(errOut, `"Nope" is not an event type`) {
		t.Fatalf("bad --type: exit %d, %q", code, errOut)
	}
	out, _, code = run(t, "log", "state", data)
	if code != 0 || !strings.Contains(out, "topic orders") || !strings.Contains(out, "orders-0 leader=1") {
		t.Fatalf("log state exit %d:\n%s", code, out)
	}
	_, errOut, code = run(t, "log", "state", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "holds no metadata log") {
		t.Fatalf("log state of an empty dir: exit %d, %q", code, errOut)
	}
}
