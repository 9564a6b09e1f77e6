package kafka

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/kafkatest"
)

// TestTransactionAdminAPIs: ListTransactions, DescribeTransactions and
// DescribeProducers (through kadm, as kafka-transactions.sh uses them)
// show an open transaction, where it starts in its partition, and its
// completion.
func TestTransactionAdminAPIs(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "adm"); err != nil {
		t.Fatal(err)
	}
	p := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("adm-tx"), kgo.DefaultProduceTopic("adm"), kgo.RecordPartitioner(kgo.ManualPartitioner())))
	defer p.Close()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil || listed["adm-tx"].State != "Ongoing" {
		t.Fatalf("list ongoing: %+v, %v", listed, err)
	}
	if none, err := adm.ListTransactions(ctx, nil, []string{"CompleteCommit"}); err != nil || len(none) != 0 {
		t.Fatalf("list committed: %+v, %v", none, err)
	}
	described, err := adm.DescribeTransactions(ctx, "adm-tx")
	d := described["adm-tx"]
	if err != nil || d.State != "Ongoing" || d.ProducerID != listed["adm-tx"].ProducerID || d.StartTimestamp <= 0 {
		t.Fatalf("describe: %+v, %v", d, err)
	}
	if _, ok := d.Topics["adm"][1]; !ok || len(d.Topics["adm"]) != 1 {
		t.Fatalf("describe: the transaction's partitions %v, want adm-1", d.Topics)
	}
	if missing, _ := adm.DescribeTransactions(ctx, "no-such-id"); !errors.Is(missing["no-such-id"].Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("describe of an unknown id: %+v", missing["no-such-id"])
	}
	producerAt := func() int64 {
		t.Helper()
		dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm": {1: {}}})
		if err != nil {
			t.Fatal(err)
		}
		part := dp["adm"].Partitions[1]
		if part.Err != nil || len(part.ActiveProducers) != 1 || part.ActiveProducers[0].ProducerID != d.ProducerID {
			t.Fatalf("describe producers: %+v", part)
		}
		return part.ActiveProducers[0].CurrentTxnStartOffset
	}
	if at := producerAt(); at != 0 {
		t.Fatalf("the open transaction starts at %d in adm-1, want 0", at)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if described, _ := adm.DescribeTransactions(ctx, "adm-tx"); described["adm-tx"].State != "CompleteCommit" {
		t.Fatalf("after the commit: %+v", described["adm-tx"])
	}
	if at := producerAt(); at != -1 {
		t.Fatalf("after the commit the producer's transaction starts at %d, want -1", at)
	}

	reg := prometheus.NewRegistry()
	b.RegisterMetrics(reg)
	if got := metricValue(t, reg, "chronik_transactions_ended_total", "commit"); got != 1 {
		t.Fatalf("committed transactions metric %v, want 1", got)
	}
	if got := metricValue(t, reg, "chronik_transactional_ids", "CompleteCommit"); got != 1 {
		t.Fatalf("ids in CompleteCommit %v, want 1", got)
	}
}

// metricValue returns the value of the metric of family name whose one
// label is value.
func metricValue(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == value {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, value)
	return 0
}

// TestAbortOpenTransactionByMarker: an operator finds a transaction that
// holds read_committed consumers back (DescribeProducers) and aborts it
// with WriteTxnMarkers, as kafka-transactions.sh abort does: the stable
// offset moves past it and its records stay unread; a marker of an older
// epoch than the producer's is refused.
func TestAbortOpenTransactionByMarker(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "stuck"); err != nil {
		t.Fatal(err)
	}
	newProducer := func() *kgo.Client {
		return must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("stuck-tx"), kgo.DefaultProduceTopic("stuck")))
	}
	first := newProducer()
	if err := first.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := first.ProduceSync(ctx, &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := first.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second := newProducer() // the next epoch
	defer second.Close()
	if err := second.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"open-1", "open-2"} {
		if err := second.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"stuck": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	open := dp["stuck"].Partitions[0].ActiveProducers
	if len(open) != 1 || open[0].CurrentTxnStartOffset != 2 {
		t.Fatalf("producers of stuck-0: %+v, want one with a transaction open at 2", open)
	}
	stable := func() int64 {
		t.Helper()
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.IsolationLevel = 1
		lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "stuck", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1}}}}
		resp, err := lo.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	if got := stable(); got != 2 {
		t.Fatalf("stable offset %d with the transaction open, want 2", got)
	}
	abort := func(epoch int16) int16 {
		t.Helper()
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		req.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: open[0].ProducerID, ProducerEpoch: epoch,
			Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "stuck", Partitions: []int32{0}}}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
	}
	if code := abort(open[0].ProducerEpoch - 1); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("a marker of an older epoch: code %d, want INVALID_PRODUCER_EPOCH", code)
	}
	if code := abort(open[0].ProducerEpoch); code != 0 {
		t.Fatalf("abort: code %d", code)
	}
	if got := stable(); got != 5 {
		t.Fatalf("stable offset %d after the abort, want 5 (past the marker)", got)
	}
	if got := kafkatest.ReadValues(t, addr, "stuck", true, 1); !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("read_committed after the abort: %v", got)
	}
}
