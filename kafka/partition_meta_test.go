package kafka

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/eventlog"
)

// TestStalePartitionDirectories: a partition directory of an earlier topic
// of the same name is cleared, not served; the open partitions of a topic
// deleted behind this node's back are removed.
func TestStalePartitionDirectories(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produceAndStop(ctx, t, dir, "re", 5)
	meta := filepath.Join(dir, "re-0", partitionMetaFile)
	if b, err := os.ReadFile(meta); err != nil || len(b) == 0 {
		t.Fatalf("no %s: %v", partitionMetaFile, err)
	}
	// The directory now claims another topic id, as one left by a deleted
	// topic of the same name would.
	if err := os.WriteFile(meta, []byte("version: 0\ntopic_id: "+eventlog.NewUUID().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startBroker(t, dir)
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	end, err := adm.ListEndOffsets(ctx, "re")
	if err != nil || end["re"][0].Offset != 0 {
		t.Fatalf("a stale directory was served: end offset %d, %v", end["re"][0].Offset, err)
	}
}

func TestSweepRemovesDeletedTopicsPartitions(t *testing.T) {
	dir := t.TempDir()
	b, addr := brokerForTest(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("gone")))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The deletion arrives as metadata only, as on a node that did not
	// handle the request.
	var id eventlog.UUID
	b.meta.View(func(s *eventlog.State) { id = s.Topics["gone"].ID })
	if _, err := b.meta.Append(&eventlog.TopicDeleted{Name: "gone", TopicID: id}); err != nil {
		t.Fatal(err)
	}
	b.sweepPartitions()
	if _, err := os.Stat(filepath.Join(dir, "gone-0")); !os.IsNotExist(err) {
		t.Fatalf("the deleted topic's directory is still there: %v", err)
	}
}

// TestGarbledPartitionMetadataKeepsTheData: a metadata file a crash left
// empty or torn (it is not synced) does not clear the directory.
func TestGarbledPartitionMetadataKeepsTheData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produceAndStop(ctx, t, dir, "kept", 3)
	if err := os.WriteFile(filepath.Join(dir, "kept-0", partitionMetaFile), []byte("version: 0\ntopic_id: 01ab"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startBroker(t, dir)
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	end, err := adm.ListEndOffsets(ctx, "kept")
	if err != nil || end["kept"][0].Offset != 3 {
		t.Fatalf("a torn metadata file cleared the partition: end offset %d, %v", end["kept"][0].Offset, err)
	}
}

// produceAndStop runs a broker on dir, creates topic with one partition,
// produces n records to it and stops the broker.
func produceAndStop(ctx context.Context, t *testing.T, dir, topic string, n int) {
	t.Helper()
	addr, stop := runBroker(t, dir)
	defer stop()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzPartitionMeta: any partition.metadata file names a well-formed topic
// id or none.
func FuzzPartitionMeta(f *testing.F) {
	f.Add([]byte("version: 0\ntopic_id: 0a1b2c3d-0000-4000-8000-00000000abcd\n"))
	f.Add([]byte("topic_id: 0a1b2c3d-0000-4000-8000-00000000abc\n"))
	f.Add([]byte("topic_id: \xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := metaTopicID(b)
		if !ok {
			return
		}
		var u eventlog.UUID
		if n, err := hex.Decode(u[:], []byte(strings.ReplaceAll(id, "-", ""))); err != nil || n != 16 || u.String() != id {
			t.Fatalf("metaTopicID(%q) = %q, not a topic id as chronik writes them", b, id)
		}
	})
}
