package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The broker driven by Kafka clients other than franz-go, each with its own
// protocol code: librdkafka (kcat, and confluent-kafka-python for
// transactions), kafka-python, IBM/sarama,
// segmentio/kafka-go and kafkajs. The clients are installed by .ci/run;
// elsewhere a test whose client is missing is skipped, unless
// CHRONIK_REQUIRE_CLIENTS is set, as .ci/run sets it.

// missing skips t because a client is not installed, or fails it when the
// clients are required.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CHRONIK_REQUIRE_CLIENTS") != "" {
		t.Fatal(why)
	}
	t.Skip(why + "; .ci/run installs it")
}

// runClient runs a client's test program, which prints "ok" on its
// standard output when every check passed.
func runClient(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("%s: %v\n%s%s", name, err, out, stderr.String())
	}
}

// TestKcat drives the broker through kcat with Debian's librdkafka (2.0)
// and with a current one: metadata, produce with every codec, consume,
// group consume.
func TestKcat(t *testing.T) {
	kcat := kcatPath(t)
	eachLibrdkafka(t, func(t *testing.T, lib librdkafka) {
		lib.check(t, kcat)
		driveKcat(t, kcat, lib, clientNode(t), 1)
	})
}

// librdkafka is a librdkafka for kcat and confluent-kafka-python to load:
// Debian's, which they link (2.0, from 2023), or a current one in its
// place, which sends the request versions of today's Kafka (Metadata v13,
// Fetch v16 by topic id, ...).
type librdkafka struct {
	current bool
	env     []string // the environment that loads it
}

// eachLibrdkafka runs fn with Debian's librdkafka and with the current one
// in CHRONIK_LIBRDKAFKA (a directory holding librdkafka.so.1, which
// testdata/librdkafka/build.sh makes and .ci/run sets), whose absence
// skips or fails as a missing client does.
func eachLibrdkafka(t *testing.T, fn func(t *testing.T, lib librdkafka)) {
	t.Run("librdkafka-2.0", func(t *testing.T) { fn(t, librdkafka{}) })
	t.Run("librdkafka-current", func(t *testing.T) {
		dir := os.Getenv("CHRONIK_LIBRDKAFKA")
		if dir == "" {
			missing(t, "no current librdkafka: set CHRONIK_LIBRDKAFKA to a directory with librdkafka.so.1 (testdata/librdkafka/build.sh DIR makes one)")
		}
		fn(t, librdkafka{current: true, env: append(os.Environ(), "LD_LIBRARY_PATH="+dir)})
	})
}

// check makes sure that the program prog (kcat, or a Python that imports
// confluent_kafka), run as lib says, loads lib: not Debian's 2.0 for the
// current one, Debian's otherwise.
func (lib librdkafka) check(t *testing.T, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = lib.env
	out, _ := cmd.CombinedOutput()
	m := regexp.MustCompile(`librdkafka (\d+\.\d+)\.|'(\d+\.\d+)\.`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s tells no librdkafka version:\n%s", prog, out)
	}
	version := string(m[1]) + string(m[2])
	if (version == "2.0") == lib.current {
		t.Fatalf("%s loads librdkafka %s, want the current one: %v", prog, version, lib.current)
	}
	t.Logf("librdkafka %s", version)
}

func kcatPath(t *testing.T) string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		missing(t, "kcat is not installed (apt-get install kcat)")
	}
	return kcat
}

// driveKcat runs kcat's checks, with lib, against the broker at addr, one
// of a cluster of brokers.
func driveKcat(t *testing.T, kcat string, lib librdkafka, addr string, brokers int) {
	t.Helper()
	topic, group := "kcat-topic", "kcat-group"
	if lib.current {
		topic, group = "kcat-current-topic", "kcat-current-group"
	}
	kc := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kcat, append([]string{"-b", addr}, args...)...)
		cmd.Env = lib.env
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
	kc(strings.Join(lines, "\n")+"\n", "-P", "-t", topic)
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		kc("compressed-"+codec+"\n", "-P", "-t", topic, "-z", codec)
	}
	out := kc("", "-C", "-t", topic, "-o", "beginning", "-e", "-q")
	for _, want := range append(lines, "compressed-gzip", "compressed-snappy", "compressed-lz4", "compressed-zstd") {
		if !strings.Contains(out, want+"\n") {
			t.Fatalf("kcat consumed no %q:\n%s", want, out)
		}
	}
	md := kc("", "-L")
	if !strings.Contains(md, fmt.Sprintf("topic %q", topic)) || !strings.Contains(md, fmt.Sprintf(" %d brokers:", brokers)) ||
		brokers == 1 && !strings.Contains(md, "broker 1 at "+addr) {
		t.Fatalf("kcat -L:\n%s", md)
	}

	// A balanced consumer (-G): it reads everything, commits when it
	// closes, and the next one in the group starts after that.
	out = kc("", "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", topic)
	if n := strings.Count(out, "\n"); n != 24 {
		t.Fatalf("kcat -G read %d lines, want 24:\n%s", n, out)
	}
	if out = kc("", "-G", group, "-e", "-q", topic); out != "" {
		t.Fatalf("the group's second consumer re-read committed records:\n%s", out)
	}
	kc("after-commit\n", "-P", "-t", topic)
	if out = kc("", "-G", group, "-e", "-q", topic); out != "after-commit\n" {
		t.Fatalf("the group's third consumer read %q, want only the new record", out)
	}
}

// TestKafkaPython drives the broker with kafka-python 2.0, an old client
// that negotiates its versions: admin, produce, group consume and commit.
func TestKafkaPython(t *testing.T) {
	python := kafkaPython(t)
	addr := clientNode(t)
	runClient(t, "kafka-python", exec.Command(python, "testdata/kafka_python.py", addr, "py-topic", "py-group"))
}

// kafkaPython is the Python that has kafka-python.
func kafkaPython(t *testing.T) string {
	t.Helper()
	return debianPython(t, "kafka", "python3-kafka")
}

// debianPython is Debian's Python, where its package pkg installs module,
// once module imports.
func debianPython(t *testing.T, module, pkg string) string {
	t.Helper()
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
		missing(t, fmt.Sprintf("the Python module %s is not installed (apt-get install %s)", module, pkg))
	}
	return python
}

// clientNode runs a node for a client's test, with groups that do not
// wait for more members, and returns its address.
func clientNode(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	startNode(t, t.TempDir(), addr, "--group-initial-rebalance-delay", "0s")
	return addr
}

// TestLibrdkafkaTransactions drives transactions with librdkafka's
// transactional producer (through confluent-kafka-python), Debian's and a
// current one: exactly-once consume-transform-produce with the group's
// offsets in the transactions.
func TestLibrdkafkaTransactions(t *testing.T) {
	python := debianPython(t, "confluent_kafka", "python3-confluent-kafka")
	eachLibrdkafka(t, func(t *testing.T, lib librdkafka) {
		lib.check(t, python, "-c", "import confluent_kafka; print(confluent_kafka.libversion())")
		cmd := exec.Command(python, "testdata/librdkafka_txn.py", clientNode(t), "rdk-txn", "rdk-txn-group")
		cmd.Env = lib.env
		runClient(t, "librdkafka transactions", cmd)
	})
}

// TestSarama drives the broker with IBM/sarama, telling it the broker runs
// Kafka versions from 0.11 (the first with idempotent producers) to 4.0,
// which makes it send the request versions of each: admin (deleted records
// and log dirs too), an idempotent producer with every codec, a group of
// two, committed offsets.
func TestSarama(t *testing.T) {
	bin := goClients(t)
	addr := clientNode(t)
	for _, version := range []string{"0.11.0.2", "1.0.0", "", "4.0.0"} {
		name := "default"
		if version != "" {
			name = version
		}
		t.Run(name, func(t *testing.T) {
			runClient(t, "sarama "+name, exec.Command(bin, "sarama", addr, "sarama-"+name, "sarama-group-"+name, version))
		})
	}
}

// TestKafkaGo drives the broker with segmentio/kafka-go: a topic created
// through its client, a writer per codec with acks=all, a group reader
// committing each record.
func TestKafkaGo(t *testing.T) {
	bin := goClients(t)
	addr := clientNode(t)
	runClient(t, "kafka-go", exec.Command(bin, "kafka-go", addr, "kafka-go-topic", "kafka-go-group"))
}

// goClients builds testdata/goclients (a module of its own, so that the
// broker's go.mod does not carry sarama and kafka-go) once per test run.
func goClients(t *testing.T) string {
	t.Helper()
	goClientsOnce.Do(func() {
		goClientsBin = filepath.Join(filepath.Dir(binary), "goclients")
		cmd := exec.Command("go", "build", "-o", goClientsBin, ".")
		cmd.Dir = "testdata/goclients"
		if out, err := cmd.CombinedOutput(); err != nil {
			goClientsErr = fmt.Sprintf("cannot build testdata/goclients (it needs the Go module proxy): %v\n%s", err, out)
		}
	})
	if goClientsErr != "" {
		missing(t, goClientsErr)
	}
	return goClientsBin
}

var (
	goClientsOnce sync.Once
	goClientsBin  string
	goClientsErr  string
)

// TestKafkajs drives the broker with kafkajs: admin with configs, created
// partitions, offsets by time and deleted records, an idempotent producer,
// a group of two consumers, committed offsets, group listing and deletion.
func TestKafkajs(t *testing.T) {
	node := kafkajsNode(t)
	addr := clientNode(t)
	runClient(t, "kafkajs", exec.Command(node, "testdata/kafkajs/client.js", addr, "kafkajs-topic", "kafkajs-group"))
}

// kafkajsNode is node, with kafkajs installed for testdata/kafkajs.
func kafkajsNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed (apt-get install nodejs npm)")
	}
	if _, err := os.Stat("testdata/kafkajs/node_modules/kafkajs"); err != nil {
		missing(t, "kafkajs is not installed (npm ci --prefix cmd/chronik/testdata/kafkajs)")
	}
	return node
}

// TestClientsAgainstACluster: the clients above against three processes,
// bootstrapped from a node that is not the controller: their metadata
// changes are forwarded, their topics' partitions led by all three nodes,
// their groups coordinated by the node that leads the offsets partition,
// and what they were told is made is in every node's answers (a node
// serves the changes it holds once they commit).
func TestClientsAgainstACluster(t *testing.T) {
	tc := startCluster(t, "--group-initial-rebalance-delay", "0s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	controller := tc.controller(ctx, tc.client(1))
	addr := tc.kafka[1+controller%3]
	t.Run("kcat", func(t *testing.T) {
		kcat := kcatPath(t)
		eachLibrdkafka(t, func(t *testing.T, lib librdkafka) { driveKcat(t, kcat, lib, addr, 3) })
	})
	t.Run("kafka-python", func(t *testing.T) {
		runClient(t, "kafka-python", exec.Command(kafkaPython(t), "testdata/kafka_python.py", addr, "py-topic", "py-group"))
	})
	t.Run("sarama", func(t *testing.T) {
		bin := goClients(t)
		for _, version := range []string{"1.0.0", ""} {
			runClient(t, "sarama "+version, exec.Command(bin, "sarama", addr, "sarama-"+version, "sarama-group-"+version, version, "3"))
		}
	})
	t.Run("kafka-go", func(t *testing.T) {
		runClient(t, "kafka-go", exec.Command(goClients(t), "kafka-go", addr, "kafka-go-topic", "kafka-go-group"))
	})
	t.Run("kafkajs", func(t *testing.T) {
		runClient(t, "kafkajs", exec.Command(kafkajsNode(t), "testdata/kafkajs/client.js", addr, "kafkajs-topic", "kafkajs-group", "3"))
	})
}
