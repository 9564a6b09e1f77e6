package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// smallDisk mounts a tmpfs of size bytes for the test, or skips where
// that is not allowed (it needs root, as .ci/run has).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a small tmpfs (%v): the full-disk test needs root", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestFullDisk runs the real binary on a disk that fills up: produce is
// answered KAFKA_STORAGE_ERROR and the node goes on serving reads;
// creating topics fails while deleting them goes through and frees the
// space; after SIGKILL on the full disk the node starts again; once the
// space is freed, produce works again, and nothing acknowledged is lost.
func TestFullDisk(t *testing.T) {
	dir := smallDisk(t, 24<<20)
	addr := freeAddr(t)
	node := startNode(t, dir, addr, "--auto-create-topics=false")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(5*time.Second),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A long name: its deletion is a larger metadata batch than the
	// creation of a topic of a short name, which must not take its room.
	filler := strings.Repeat("f", 240)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, filler); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "kept", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 256<<10)
	rand.Read(value) // stored as it is: no codec shrinks it
	acked := 0
	for ; acked < 200; acked++ {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: filler, Value: value}).FirstErr()
		if errors.Is(err, kerr.KafkaStorageError) {
			break
		}
		if err != nil {
			t.Fatalf("produce %d: %v", acked, err)
		}
	}
	if acked == 0 || acked == 200 {
		t.Fatalf("%d records of 256 KiB acknowledged on a disk of 24 MiB", acked)
	}
	// Topics are created until the metadata log keeps only its room for
	// deletions.
	made := 0
	for ; made < 100_000; made += 500 {
		var names []string
		for i := range 500 {
			names = append(names, fmt.Sprintf("t%d", made+i))
		}
		resp, err := adm.CreateTopics(ctx, 1, 1, nil, names...)
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(resp[names[0]].Err, kerr.KafkaStorageError) {
			break
		}
		if err := resp.Error(); err != nil {
			t.Fatalf("creating topics %d-%d: %v", made, made+499, err)
		}
	}
	if made == 100_000 {
		t.Fatal("100,000 topics made on a full disk")
	}
	// Then one at a time, as auto-creating clients would, until none fits.
	for i := 0; ; i++ {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, fmt.Sprintf("s%d", i))
		if errors.Is(err, kerr.KafkaStorageError) {
			break
		}
		if err != nil || i == 10_000 {
			t.Fatalf("creating topic s%d: %v", i, err)
		}
		made++
	}
	t.Logf("%d records of 256 KiB acknowledged, then %d topics made before the disk was full", acked, made)

	// SIGKILL, and a start on the full disk.
	node.Process.Signal(syscall.SIGKILL)
	node.Wait()
	startNode(t, dir, addr, "--auto-create-topics=false")
	cl2, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(filler), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	got := 0
	for got < acked {
		fs := cl2.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("reading back after %d of %d: %v", got, acked, err)
		}
		got += fs.NumRecords()
	}
	adm2 := kadm.NewClient(cl2)
	deleted, err := adm2.DeleteTopics(ctx, filler)
	if err != nil || deleted.Error() != nil {
		t.Fatalf("deleting a topic on a full disk: %v %v", err, deleted.Error())
	}
	// The space is back: produce and create work again.
	for i := 0; ; i++ {
		err := cl2.ProduceSync(ctx, &kgo.Record{Topic: "kept", Value: []byte("after")}).FirstErr()
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("produce after the deletion: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := adm2.CreateTopic(ctx, 1, 1, nil, "new"); err != nil {
		t.Fatalf("a topic created after the deletion: %v", err)
	}
	ends, err := adm2.ListEndOffsets(ctx, "kept")
	if err != nil || ends["kept"][0].Offset != 2 {
		t.Fatalf("kept ends at %v (%v), want 2", ends, err)
	}
	if out, err := exec.Command("df", "-h", dir).Output(); err == nil {
		t.Logf("%s", out)
	}
	if _, err := os.Stat(dir + "/" + filler + "-0"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted topic's directory: %v", err)
	}
}
