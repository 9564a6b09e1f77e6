package kafka

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWaitAny: a wait over many channels ends when any one of them is
// closed, also beyond the cases one select takes, and times out when none
// is.
func TestWaitAny(t *testing.T) {
	for _, n := range []int{1, 1000, maxSelect + 10} {
		chans := make([]chan struct{}, n)
		ro := make([]<-chan struct{}, n)
		for i := range chans {
			chans[i] = make(chan struct{})
			ro[i] = chans[i]
		}
		if waitAny(ro, 20*time.Millisecond) {
			t.Fatalf("%d channels: woken with none closed", n)
		}
		for _, i := range []int{0, n - 1} {
			c := make(chan struct{})
			ro[i] = c
			go func() { time.Sleep(10 * time.Millisecond); close(c) }()
			start := time.Now()
			if !waitAny(ro, 10*time.Second) || time.Since(start) > 5*time.Second {
				t.Fatalf("%d channels: not woken by closing channel %d", n, i)
			}
			ro[i] = chans[i]
		}
	}
}

// TestLongPollOfManyPartitionsParksOneGoroutine: a fetch waiting for data
// in 500 partitions holds no goroutine per partition.
func TestLongPollOfManyPartitionsParksOneGoroutine(t *testing.T) {
	_, addr := brokerForTest(t, t.TempDir())
	ctx := context.Background()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 500, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MinBytes, req.MaxBytes = 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "wide"
	for p := range int32(500) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes = p, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = []kmsg.FetchRequestTopic{ft}
	if _, err := req.RequestWith(ctx, cl); err != nil { // opens the partitions
		t.Fatal(err)
	}
	req.MaxWaitMillis = 1500
	before := runtime.NumGoroutine()
	done := make(chan error, 1)
	go func() {
		_, err := req.RequestWith(ctx, cl)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	during := runtime.NumGoroutine()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if during-before > 20 {
		t.Fatalf("a long poll of 500 partitions runs %d more goroutines", during-before)
	}
}
