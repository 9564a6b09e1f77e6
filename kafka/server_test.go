package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/kafkatest"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// startBroker runs a broker on a free loopback port with its data in dir,
// stopped when the test ends, and returns its address.
func startBroker(t *testing.T, dir string) string {
	t.Helper()
	addr, stop := runBroker(t, dir)
	t.Cleanup(stop)
	return addr
}

// brokerAdmin runs a broker, stopped when the test ends, and returns its
// address, a context of 30 s and an admin client of it, both ended with the
// test.
func brokerAdmin(t *testing.T) (string, context.Context, *kadm.Client) {
	t.Helper()
	addr, _, adm := brokerClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return addr, ctx, adm
}

// brokerClients runs a broker, stopped when the test ends, and returns its
// address, a client of it and an admin client over that client, closed
// when the test ends.
func brokerClients(t *testing.T) (string, *kgo.Client, *kadm.Client) {
	t.Helper()
	addr := startBroker(t, t.TempDir())
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	t.Cleanup(cl.Close)
	return addr, cl, kadm.NewClient(cl)
}

// adminForTest is brokerAdmin without the address.
func adminForTest(t *testing.T) (context.Context, *kadm.Client) {
	t.Helper()
	_, ctx, adm := brokerAdmin(t)
	return ctx, adm
}

// runBroker runs a broker and returns its address and how to stop it.
func runBroker(t *testing.T, dir string) (string, func()) {
	t.Helper()
	_, addr, stop := newTestBroker(t, dir)
	return addr, stop
}

// brokerForTest runs a broker, stopped when the test ends, and returns it
// and its address.
func brokerForTest(t *testing.T, dir string) (*Broker, string) {
	t.Helper()
	b, addr, stop := newTestBroker(t, dir)
	t.Cleanup(stop)
	return b, addr
}

// memBroker is a single-node broker on fsys, without a server. Its
// metadata log has small segments: the in-memory file system backs a
// mapping with real memory. set, if given, changes its configuration.
func memBroker(t testing.TB, fsys segment.FS, set ...func(*Config)) *Broker {
	t.Helper()
	store := memStore(t, fsys)
	return memBrokerOn(t, store, memMeta(t, store, eventlog.Options{}), set...)
}

// memMeta opens a metadata log on store with opts and small segments,
// closed with the test.
func memMeta(t testing.TB, store *segment.Store, opts eventlog.Options) *eventlog.Log {
	t.Helper()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	opts.Segment = &cfg
	meta, err := eventlog.Open(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return meta
}

// memBrokerOn is node 1's broker on store and meta, without a server; set,
// if given, changes its configuration.
func memBrokerOn(t testing.TB, store *segment.Store, meta *eventlog.Log, set ...func(*Config)) *Broker {
	t.Helper()
	bcfg := Config{NodeID: 1, Host: "127.0.0.1", Port: 9092, ClusterID: "test", DefaultPartitions: 1}
	for _, f := range set {
		f(&bcfg)
	}
	b, err := NewBroker(bcfg, store, meta, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stopWaits)
	return b
}

// memStore is a store on fsys, closed with the test.
func memStore(t testing.TB, fsys segment.FS) *segment.Store {
	t.Helper()
	store, err := segment.OpenStore("/d", segment.StoreOptions{FS: fsys, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// newTestBroker runs a broker, changed by set if given, and returns it,
// its address and how to stop it.
func newTestBroker(t *testing.T, dir string, set ...func(*Config)) (*Broker, string, func()) {
	t.Helper()
	store, err := segment.OpenStore(dir, WithSpares(segment.StoreOptions{})) // as chronik start
	if err != nil {
		t.Fatal(err)
	}
	meta, err := eventlog.Open(store, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	log := slog.New(slog.DiscardHandler)
	cfg := Config{NodeID: 1, Host: host, Port: int32(p), ClusterID: "test", AutoCreateTopics: true, DefaultPartitions: 2,
		Groups: group.Config{MinSessionTimeout: 100 * time.Millisecond}}
	for _, f := range set {
		f(&cfg)
	}
	b, err := NewBroker(cfg, store, meta, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenPartitions(); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, ServerOptions{}, log, nil)
	go srv.Serve(ln)
	return b, ln.Addr().String(), func() {
		srv.Close()
		meta.Close()
		store.Close()
	}
}

func TestProduceConsumeWithFranzGo(t *testing.T) {
	dir := t.TempDir()
	addr := startBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	created, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
	if err != nil || created["orders"].Err != nil {
		t.Fatalf("create topic: %v %v", err, created["orders"].Err)
	}
	again, _ := adm.CreateTopics(ctx, 3, 1, nil, "orders")
	if again["orders"].Err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	bad, _ := adm.CreateTopics(ctx, 1, 3, nil, "replicated")
	if bad["replicated"].Err == nil {
		t.Fatal("replication factor 3 on one node succeeded")
	}

	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner())))
		for i := range 30 {
			r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i)), Partition: int32(i % 3)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
		prod.Close()
	}

	cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	defer cons.Close()
	got := 0
	for got < 150 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume after %d records: %v", got, err)
		}
		got += fs.NumRecords()
	}

	maxTs, err := adm.ListMaxTimestampOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	maxTs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset < 0 || o.Timestamp <= 0 {
			t.Errorf("max timestamp offset of %s-%d: %+v", o.Topic, o.Partition, o)
		}
	})

	offsets, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	offsets.Each(func(o kadm.ListedOffset) { end += o.Offset })
	if end != 150 {
		t.Fatalf("end offsets sum to %d, want 150", end)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAutoCreateTopic(t *testing.T) {
	dir := t.TempDir()
	addr := startBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto")))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic: %v", err)
	}
	cl.Close()
	md, err := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr)))).Metadata(ctx, "auto")
	if err != nil || len(md.Topics["auto"].Partitions) != 2 || md.Controller != 1 || md.Cluster != "test" {
		t.Fatalf("metadata: %v %+v", err, md)
	}
}

// TestBadFrames sends what no client should: the broker closes the
// connection and goes on serving.
func TestBadFrames(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	for _, frame := range [][]byte{
		{0x7f, 0xff, 0xff, 0xff},                                // 2 GiB frame: refused before allocating
		{0, 0, 0, 10, 0x7f, 0x00, 0, 1, 0, 0, 0, 1, 0, 0},       // unknown API key
		{0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0xff, 0xff}, // Metadata v9 with a garbled body
		{0, 0, 0, 2, 0, 0},                                      // shorter than a header
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(frame)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var buf [1]byte
		if _, err := c.Read(buf[:]); err == nil {
			t.Errorf("frame %x got an answer, want the connection closed", frame)
		}
		c.Close()
	}
	// Still serving.
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if _, err := adm.BrokerMetadata(context.Background()); err != nil {
		t.Fatalf("after bad frames: %v", err)
	}
}

func TestAdminAPIs(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if r, err := adm.CreateTopics(ctx, 1, 1, nil, "t"); err != nil || r["t"].Err != nil {
		t.Fatal(err, r["t"].Err)
	}
	prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t")))
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Configs: set, describe, delete, refuse what is not served.
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("60000")}}, "t")
	if err != nil || alter[0].Err != nil {
		t.Fatalf("alter: %v %v", err, alter)
	}
	desc, err := adm.DescribeTopicConfigs(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := desc.On("t", nil)
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["retention.ms"] != "60000" || got["segment.bytes"] != "1073741824" {
		t.Fatalf("described configs %v", got)
	}
	bad, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "no.such.config", Value: kadm.StringPtr("1")}}, "t")
	if len(bad) == 0 || bad[0].Err == nil {
		t.Fatal("an unknown config was accepted")
	}
	bad, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("ten")}}, "t")
	if len(bad) == 0 || bad[0].Err == nil {
		t.Fatal("a bad value was accepted")
	}

	// AlterConfigs replaces the whole set: retention.ms returns to its default.
	state, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("1048576")}}, "t")
	if err != nil || state[0].Err != nil {
		t.Fatalf("alter (non-incremental): %v %v", err, state)
	}
	desc, _ = adm.DescribeTopicConfigs(ctx, "t")
	rc, _ = desc.On("t", nil)
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["segment.bytes"] != "1048576" || got["retention.ms"] != topicConfigKeys["retention.ms"] {
		t.Fatalf("after AlterConfigs: %v", got)
	}

	// Partitions: grow, refuse to shrink.
	if r, err := adm.CreatePartitions(ctx, 2, "t"); err != nil || r["t"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, r["t"].Err)
	}
	if r, _ := adm.UpdatePartitions(ctx, 2, "t"); r["t"].Err == nil {
		t.Fatal("shrinking to 2 partitions succeeded")
	}
	md, _ := adm.Metadata(ctx, "t")
	if n := len(md.Topics["t"].Partitions); n != 3 {
		t.Fatalf("%d partitions after growing, want 3", n)
	}

	// Delete, then a new topic of the same name starts empty.
	if r, err := adm.DeleteTopics(ctx, "t"); err != nil || r["t"].Err != nil {
		t.Fatalf("delete: %v %v", err, r["t"].Err)
	}
	if r, _ := adm.DeleteTopics(ctx, "t"); r["t"].Err == nil {
		t.Fatal("deleting a deleted topic succeeded")
	}
	if r, _ := adm.DeleteTopics(ctx, eventlog.TopicName); r[eventlog.TopicName].Err == nil {
		t.Fatal("deleting the metadata log succeeded")
	}
	if r, err := adm.CreateTopics(ctx, 1, 1, nil, "t"); err != nil || r["t"].Err != nil {
		t.Fatal(err, r["t"].Err)
	}
	ends, err := adm.ListEndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("t", 0); o.Offset != 0 {
		t.Fatalf("recreated topic starts at end offset %d, want 0", o.Offset)
	}
}

// TestMetadataLogIsReadable: any consumer reads __chronik_metadata and
// gets the events as records; producing to it is refused.
func TestMetadataLogIsReadable(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if r, err := adm.CreateTopics(ctx, 2, 1, nil, "orders"); err != nil || r["orders"].Err != nil {
		t.Fatal(err, r["orders"].Err)
	}
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(eventlog.TopicName), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	defer cl.Close()
	var types []string
	for len(types) < 6 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			e, err := eventlog.Decode(r.Value)
			if err != nil {
				t.Fatalf("record at %d: %v", r.Offset, err)
			}
			types = append(types, e.Type().String())
		})
	}
	if fmt.Sprint(types) != "[LeaderChanged BrokerRegistered ConfigChanged TopicCreated PartitionChanged PartitionChanged]" {
		t.Fatalf("events read as records: %v", types)
	}
	prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(eventlog.TopicName)))
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("forged")}).FirstErr(); err == nil {
		t.Fatal("producing to the metadata log succeeded")
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	cluster, err := dc.RequestWith(ctx, cl)
	if err != nil || cluster.ControllerID != 1 || len(cluster.Brokers) != 1 || cluster.ClusterID != "test" {
		t.Fatalf("describe cluster: %v %+v", err, cluster)
	}
}

// TestIdempotentProducer sends idempotent batches by hand: a retry gets its
// original offset and writes nothing, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER,
// an old epoch INVALID_PRODUCER_EPOCH, and the state survives a restart.
func TestIdempotentProducer(t *testing.T) {
	dir := t.TempDir()
	addr, stop := runBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(addr string) *kgo.Client { return must(kgo.NewClient(kgo.SeedBrokers(addr))) }
	cl := client(addr)
	if r, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "idem"); err != nil || r["idem"].Err != nil {
		t.Fatal(err, r["idem"].Err)
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	ip, err := init.RequestWith(ctx, cl)
	if err != nil || ip.ErrorCode != 0 || ip.ProducerID < 0 {
		t.Fatalf("InitProducerId: %v %+v", err, ip)
	}
	idem := idOf(t, cl, "idem")
	produce := func(cl *kgo.Client, epoch int16, seq int32) (int64, int16) {
		t.Helper()
		batch := segmenttest.Batch{Idempotent: true, ProducerID: ip.ProducerID, ProducerEpoch: epoch, BaseSequence: seq, Records: []segmenttest.Record{{Value: []byte(fmt.Sprint(seq))}}}.Build()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "idem", idem
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		return p.BaseOffset, p.ErrorCode
	}
	check := func(what string, gotOff int64, gotCode int16, wantOff int64, wantCode int16) {
		t.Helper()
		if gotCode != wantCode || (wantCode == 0 && gotOff != wantOff) {
			t.Fatalf("%s: offset %d code %d, want offset %d code %d", what, gotOff, gotCode, wantOff, wantCode)
		}
	}
	off, code := produce(cl, 0, 0)
	check("first batch", off, code, 0, 0)
	off, code = produce(cl, 0, 0)
	check("retry", off, code, 0, 0)
	off, code = produce(cl, 0, 5)
	check("gap", off, code, 0, kerr.OutOfOrderSequenceNumber.Code)
	off, code = produce(cl, 0, 1)
	check("next", off, code, 1, 0)
	cl.Close()
	stop()

	addr = startBroker(t, dir)
	cl = client(addr)
	defer cl.Close()
	off, code = produce(cl, 0, 1)
	check("retry after a restart", off, code, 1, 0)
	ends, _ := kadm.NewClient(cl).ListEndOffsets(ctx, "idem")
	if o, _ := ends.Lookup("idem", 0); o.Offset != 2 {
		t.Fatalf("end offset %d, want 2: a retry was written twice", o.Offset)
	}
	off, code = produce(cl, 1, 0)
	check("new epoch", off, code, 2, 0)
	off, code = produce(cl, 0, 2)
	check("old epoch", off, code, 0, kerr.InvalidProducerEpoch.Code)
}

// TestIdleConnectionsCostLittle opens 1,000 connections that send nothing
// and checks what they cost the broker's process.
func TestIdleConnectionsCostLittle(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Both ends of each connection are in this process: stay within its
	// file limit (Go raises the soft limit to the hard one at start).
	n := 1000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 2*uint64(n)+200 {
		n = int(lim.Cur-200) / 2
	}
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Let the broker accept them all, then check they are still served.
	adm := kadm.NewClient(must(kgo.NewClient(kgo.SeedBrokers(addr))))
	defer adm.Close()
	if _, err := adm.BrokerMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Both ends live in this process: each connection here is a client
	// conn, a server conn and the server's goroutine with its 4 KiB reader.
	perConn := (int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)) / int64(n)
	t.Logf("%d bytes per idle connection (both ends)", perConn)
	if perConn > 24<<10 {
		t.Fatalf("an idle connection costs %d bytes", perConn)
	}
}

// TestInternalTopicsAreProtected: the metadata log and the offsets are
// listed as internal topics; creating, deleting, altering, growing or
// producing to them is refused, and the broker keeps its metadata.
func TestInternalTopicsAreProtected(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation()))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	internal := []string{eventlog.TopicName, group.Topic}
	md, err := adm.Metadata(ctx, internal...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range internal {
		if td := md.Topics[name]; td.Err != nil || !td.IsInternal || len(td.Partitions) != 1 {
			t.Fatalf("metadata of %s: %+v", name, td)
		}
		created, _ := adm.CreateTopics(ctx, 1, 1, nil, name)
		if !errors.Is(created[name].Err, kerr.TopicAlreadyExists) {
			t.Errorf("create %s: %v, want TOPIC_ALREADY_EXISTS", name, created[name].Err)
		}
		deleted, _ := adm.DeleteTopics(ctx, name)
		if !errors.Is(deleted[name].Err, kerr.InvalidTopicException) {
			t.Errorf("delete %s: %v, want INVALID_TOPIC_EXCEPTION", name, deleted[name].Err)
		}
		altered, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1")}}, name)
		if len(altered) != 1 || !errors.Is(altered[0].Err, kerr.InvalidTopicException) {
			t.Errorf("alter %s: %+v, want INVALID_TOPIC_EXCEPTION", name, altered)
		}
		grown, _ := adm.CreatePartitions(ctx, 3, name)
		if !errors.Is(grown[name].Err, kerr.InvalidTopicException) {
			t.Errorf("create partitions of %s: %v, want INVALID_TOPIC_EXCEPTION", name, grown[name].Err)
		}
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: name, Value: []byte("forged")}).FirstErr()
		if !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", name, err)
		}
	}
	// The metadata log is intact: topics are still created and listed.
	if r, err := adm.CreateTopics(ctx, 1, 1, nil, "after"); err != nil || r["after"].Err != nil {
		t.Fatalf("create after the refusals: %v %v", err, r["after"].Err)
	}
}

// TestMalformedRequests: each kind of bad input gets its documented
// answer, and the broker keeps serving.
func TestMalformedRequests(t *testing.T) {
	addr := startBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "good"); err != nil {
		t.Fatal(err)
	}

	// A batch whose CRC does not match: CORRUPT_MESSAGE, nothing stored.
	batch := segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: []byte("v")}}), 1, segment.CodecNone, 0)
	batch[len(batch)-1] ^= 0xff
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = "good", idOf(t, cl, "good")
	pt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}
	produce.Topics = append(produce.Topics, pt)
	if resp, err := produce.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.CorruptMessage.Code {
		t.Errorf("bad CRC: %v %+v, want CORRUPT_MESSAGE", err, resp)
	}

	// Batches whose CRC matches but whose records do not hold together
	// (a record's offset delta out of order), or whose compressed records
	// do not decompress: INVALID_RECORD and CORRUPT_MESSAGE, nothing stored.
	reorder := segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: []byte("a")}, {Value: []byte("b")}}), 2, segment.CodecNone, 0)
	reorder[len(reorder)-5] = 4 // the second record's offset delta: 2, not 1
	notZstd := segment.BuildBatch(bytes.Repeat([]byte{1, 2, 3}, 20), 1, segment.CodecZstd, 0)
	for _, tc := range []struct {
		batch []byte
		want  int16
	}{
		{segmenttest.FixCRC(reorder), kerr.InvalidRecord.Code},
		{notZstd, kerr.CorruptMessage.Code},
	} {
		pt.Partitions[0].Records = tc.batch
		if resp, err := produce.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != tc.want {
			t.Errorf("a batch with bad records: %v %+v, want error %d", err, resp, tc.want)
		}
	}

	// Invalid topic names: INVALID_TOPIC_EXCEPTION from CreateTopics and
	// from an auto-creating Metadata request.
	create := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"bad/name", "", ".", string(make([]byte, 250))} {
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, 1, 1
		create.Topics = append(create.Topics, ct)
	}
	if resp, err := create.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		for _, rt := range resp.Topics {
			if rt.ErrorCode != kerr.InvalidTopicException.Code {
				t.Errorf("create %q: error %d, want INVALID_TOPIC_EXCEPTION", rt.Topic, rt.ErrorCode)
			}
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	bad := "no spaces allowed"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &bad}}
	md.AllowAutoTopicCreation = true
	if resp, err := md.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("metadata for a bad name: %v %+v", err, resp)
	}

	// Versions: an unsupported ApiVersions version is answered with v0 and
	// UNSUPPORTED_VERSION; any other API's unsupported version closes the
	// connection, as Kafka does.
	raw := func(frame []byte) []byte {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(frame)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		body, _ := kafkatest.ReadFrame(c)
		return body
	}
	av := raw([]byte{0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 7, 0, 0})
	if len(av) < 6 || binary.BigEndian.Uint32(av) != 7 || int16(binary.BigEndian.Uint16(av[4:])) != kerr.UnsupportedVersion.Code {
		t.Errorf("ApiVersions v99: %x, want correlation 7 and UNSUPPORTED_VERSION", av)
	}
	if got := raw([]byte{0, 0, 0, 10, 0, 0, 0, 99, 0, 0, 0, 7, 0, 0}); got != nil {
		t.Errorf("Produce v99 was answered: %x", got)
	}

	// Still serving.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "good", Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("after the bad requests: %v", err)
	}
	end, err := adm.ListEndOffsets(ctx, "good")
	if err != nil || end["good"][0].Offset != 1 {
		t.Fatalf("end offset %v %v, want 1: the corrupt batch must not be stored", end["good"][0].Offset, err)
	}
}
