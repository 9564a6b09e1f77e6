package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/eventlog"
)

// TestDescribeLogDirs: kadm sees the data directory with each partition's
// size on disk and the volume's total and usable bytes.
func TestDescribeLogDirs(t *testing.T) {
	dir := t.TempDir()
	addr := startBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("sized"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression())))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "sized"); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1000)
	for range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value, Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	if len(dirs) != 1 {
		t.Fatalf("%d log dirs, want 1: %+v", len(dirs), dirs)
	}
	var d kadm.DescribedLogDir
	for _, one := range dirs {
		d = one
	}
	if d.Err != nil || d.Dir != dir {
		t.Fatalf("log dir %q (%v), want %q", d.Dir, d.Err, dir)
	}
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Fatalf("volume: total %d, usable %d", d.TotalBytes, d.UsableBytes)
	}
	if p, ok := d.Topics.Lookup("sized", 0); !ok || p.Size < 5000 || p.Size > 6000 {
		t.Fatalf("sized-0: %+v (found %v), want about 5 KB", p, ok)
	}
	if p, ok := d.Topics.Lookup("sized", 1); !ok || p.Size != 0 {
		t.Fatalf("sized-1: %+v (found %v), want empty", p, ok)
	}
	if p, ok := d.Topics.Lookup(eventlog.TopicName, 0); !ok || p.Size == 0 {
		t.Fatalf("the metadata log: %+v (found %v)", p, ok)
	}

	// Asked for: only what the node holds is answered.
	some, err := adm.DescribeBrokerLogDirs(ctx, 1, kadm.TopicsSet{"sized": {1: {}, 7: {}}, "nowhere": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range some {
		if _, ok := d.Topics.Lookup("sized", 1); !ok || len(d.Topics) != 1 || len(d.Topics["sized"]) != 1 {
			t.Fatalf("asked for sized-1, sized-7 and nowhere-0: %+v", d.Topics)
		}
	}
}
