package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/segment"
)

// TestWorkloads runs every workload briefly against chronik and kfake, so
// that the benchmarks and `chronik bench` keep working.
func TestWorkloads(t *testing.T) {
	ctx, chronik := startForTest(t)
	kfake, err := StartKfake(false)
	if err != nil {
		t.Fatal(err)
	}
	defer kfake.Close()
	for _, target := range []*Target{chronik, kfake} {
		p := &Progress{}
		check := func(r *Result, err error, ops int64) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", target.Name, err)
			}
			if r.Ops != ops || r.Elapsed <= 0 || r.Rate() <= 0 {
				t.Fatalf("%s: %s: %d ops in %v, want %d", target.Name, r.Workload, r.Ops, r.Elapsed, ops)
			}
		}
		r, err := CreateTopics(ctx, target.Addr, "ct", 20, 7, p)
		check(r, err, 20)
		r, err = FirstMessages(ctx, target.Addr, "fm", 5, p)
		check(r, err, 5)
		if r.Percentile(0.5) <= 0 || r.Percentile(0.5) > r.Percentile(1) {
			t.Fatalf("%s: latencies %v / %v", target.Name, r.Percentile(0.5), r.Percentile(1))
		}
		r, err = SingleMessages(ctx, target.Addr, "sm", 10, 100, p)
		check(r, err, 10)
		r, err = Produce(ctx, target.Addr, "pr", 2, 1000, 100, p)
		check(r, err, 1000)
		r, err = Consume(ctx, target.Addr, "pr", 1000, p)
		check(r, err, 1000)
		r, err = ConcurrentProducers(ctx, target.Addr, "cp", 4, 5, 10, p)
		check(r, err, 20)
		r, err = Transactions(ctx, target.Addr, "tx", 3, 5, 10, p)
		check(r, err, 5)
		if ops, _ := p.Load(); ops < 20+5+10+1000+1000+20+5 {
			t.Fatalf("%s: progress counted %d ops", target.Name, ops)
		}
	}
	r, err := DiskWrite(t.TempDir(), 64<<10, 4<<10, 1, true)
	if err != nil || r.Ops != 16 || r.Bytes != 64<<10 {
		t.Fatalf("disk: %v %+v", err, r)
	}
	r, err = DiskWrite(t.TempDir(), 64<<10, 4<<10, 4, false)
	if err != nil || r.Ops != 4 || r.Bytes != 64<<10 {
		t.Fatalf("disk, 4 files: %v %+v", err, r)
	}
	dir := t.TempDir()
	r, err = DiskNewPartition(dir, 3)
	if err != nil || r.Ops != 3 || r.Samples().Len() != 3 {
		t.Fatalf("disk, new partitions: %v %+v", err, r)
	}
	if fi, err := os.Stat(filepath.Join(dir, "p-2", "partition.metadata")); err != nil || fi.Size() != 58 {
		t.Fatalf("the third partition's metadata file: %v %v", fi, err)
	}
	if _, err := DiskNewPartition(dir, 0); err == nil {
		t.Fatal("no partitions: no error")
	}
}

// TestProduceBatchesStoresEveryRecord: the pre-encoded batches reach
// every partition, each request's once, and a broker's error fails the
// run.
func TestProduceBatchesStoresEveryRecord(t *testing.T) {
	ctx, chronik := startForTest(t)
	p := &Progress{}
	r, err := ProduceBatches(ctx, chronik.Addr, "pb", 3, 5000, 1024, p)
	if err != nil {
		t.Fatal(err)
	}
	_, perRequest := produceRequest("pb", 3, 1024)
	if r.Ops < 5000 || r.Ops%int64(perRequest) != 0 || r.Ops-5000 >= int64(perRequest) || r.Bytes != r.Ops*1024 {
		t.Fatalf("%d records (%d bytes) for 5,000 asked, %d a request", r.Ops, r.Bytes, perRequest)
	}
	if ops, bytes := p.Load(); ops != r.Ops || bytes != r.Bytes || r.Samples().Len() != int(r.Ops)/perRequest {
		t.Fatalf("progress %d records, %d bytes; %d latencies", ops, bytes, r.Samples().Len())
	}
	adm := kadm.NewClient(mustClient(t, chronik.Addr))
	ends, err := adm.ListEndOffsets(ctx, "pb")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset != r.Ops/3 {
			t.Errorf("partition %d ends at %d (%v), want %d", o.Partition, o.Offset, o.Err, r.Ops/3)
		}
	})
	// A broker's error fails the run, naming it.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("4096")}}, "pb"); err != nil {
		t.Fatal(err)
	}
	if _, err := ProduceBatches(ctx, chronik.Addr, "pb", 3, 10, 1024, nil); err == nil || !strings.Contains(err.Error(), "MESSAGE_TOO_LARGE") {
		t.Fatalf("a batch over max.message.bytes: %v", err)
	}
}

func mustClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := client(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// startForTest starts chronik in a temporary directory, stopped at the
// test's end, with a minute for the test's requests.
func startForTest(t *testing.T) (context.Context, *Target) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	chronik, err := StartChronik(t.TempDir(), segment.ProfileLow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chronik.Close)
	return ctx, chronik
}
