package kafka

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-stream/chronik/segment"
)

// sessionFetcher sends raw fetches of one topic, as a client with a
// session does: by the topic's id if tid is set (Fetch v13+), else by
// its name (the client's versions capped at v12).
type sessionFetcher struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	tid   [16]byte
	id    int32
	epoch int32
}

type fetchedPart struct {
	p            int32
	code         int16
	records      int
	hw, logStart int64
}

// fetch sends the partitions at their offsets (and forgets forget) and
// returns the response's partitions in order.
func (f *sessionFetcher) fetch(offsets map[int32]int64, forget []int32, wait time.Duration) (code int16, sessionID int32, parts []fetchedPart) {
	f.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SessionID, req.SessionEpoch = f.id, f.epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(wait/time.Millisecond), 1, 1<<20
	if len(offsets) > 0 {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = f.topic, f.tid
		for p := range int32(64) {
			if off, ok := offsets[p]; ok {
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, off, 1<<20
				ft.Partitions = append(ft.Partitions, fp)
			}
		}
		req.Topics = append(req.Topics, ft)
	}
	if len(forget) > 0 {
		ff := kmsg.NewFetchRequestForgottenTopic()
		ff.Topic, ff.TopicID, ff.Partitions = f.topic, f.tid, forget
		req.ForgottenTopics = append(req.ForgottenTopics, ff)
	}
	resp, err := req.RequestWith(context.Background(), f.cl)
	if err != nil {
		f.t.Fatal(err)
	}
	if v := resp.GetVersion(); (v >= 13) != (f.tid != [16]byte{}) {
		f.t.Fatalf("a fetch of v%d with topic id %x", v, f.tid)
	}
	for _, rt := range resp.Topics {
		if f.tid != [16]byte{} && rt.TopicID != f.tid || f.tid == [16]byte{} && rt.Topic != f.topic {
			f.t.Fatalf("a fetch answered topic %q, id %x", rt.Topic, rt.TopicID)
		}
		for _, rp := range rt.Partitions {
			n := 0
			for data := rp.RecordBatches; len(data) > 0; {
				h, err := segment.ParseHeader(data)
				if err != nil || h.Size() > len(data) {
					f.t.Fatalf("p%d: a bad batch in a fetch response: %v", rp.Partition, err)
				}
				n += int(h.RecordCount)
				data = data[h.Size():]
			}
			parts = append(parts, fetchedPart{p: rp.Partition, code: rp.ErrorCode, records: n, hw: rp.HighWatermark, logStart: rp.LogStartOffset})
		}
	}
	if resp.ErrorCode == 0 && f.epoch >= 0 {
		f.id = resp.SessionID
		f.epoch++
	}
	return resp.ErrorCode, resp.SessionID, parts
}

func partitionsOf(parts []fetchedPart) string {
	s := ""
	for _, p := range parts {
		s += fmt.Sprintf("p%d:%d ", p.p, p.records)
	}
	return s
}

// TestFetchSessions runs a session of topic names (Fetch v7-v12) and one
// of topic ids (v13+).
func TestFetchSessions(t *testing.T) {
	for _, byID := range []bool{false, true} {
		t.Run(map[bool]string{false: "names", true: "ids"}[byID], func(t *testing.T) { testFetchSessions(t, byID) })
	}
}

// namesOnly caps a client's Fetch and Produce at v12, the last versions
// that name topics.
func namesOnly() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	v.SetMaxKeyVersion(kmsg.Produce.Int16(), 12)
	return kgo.MaxVersions(v)
}

func testFetchSessions(t *testing.T, byID bool) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx := context.Background()
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("s"), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if !byID {
		opts = append(opts, namesOnly())
	}
	cl := must(kgo.NewClient(opts...))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "s"); err != nil {
		t.Fatal(err)
	}
	produce := func(ps ...int32) {
		t.Helper()
		for _, p := range ps {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 1, 2, 3)

	f := &sessionFetcher{t: t, cl: cl, topic: "s"}
	if byID {
		f.tid = idOf(t, cl, "s")
	}
	// A full fetch opens the session and answers every partition.
	code, id, parts := f.fetch(map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}, nil, time.Second)
	if code != 0 || id == 0 || partitionsOf(parts) != "p0:1 p1:1 p2:1 p3:1 " {
		t.Fatalf("new session: code %d, id %d, %s", code, id, partitionsOf(parts))
	}
	if n, ps := b.sessions.stats(); n != 1 || ps != 4 {
		t.Fatalf("the cache holds %d sessions, %d partitions; want 1, 4", n, ps)
	}
	// Partitions 0 and 1 move on; 2 and 3 are still at 0 in the session,
	// so they answer again; 0 and 1 have nothing new and are left out.
	if code, _, parts = f.fetch(map[int32]int64{0: 1, 1: 1}, nil, time.Second); code != 0 || partitionsOf(parts) != "p2:1 p3:1 " {
		t.Fatalf("incremental: code %d, %s", code, partitionsOf(parts))
	}
	// Nothing new anywhere: the fetch waits and answers no partition.
	start := time.Now()
	if code, _, parts = f.fetch(map[int32]int64{2: 1, 3: 1}, nil, 200*time.Millisecond); code != 0 || len(parts) != 0 {
		t.Fatalf("nothing new: code %d, %s", code, partitionsOf(parts))
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("an incremental fetch with nothing new did not wait")
	}
	// An append wakes a waiting incremental fetch; only that partition
	// answers.
	done := make(chan []fetchedPart)
	go func() {
		_, _, parts := f.fetch(nil, nil, 10*time.Second)
		done <- parts
	}()
	time.Sleep(50 * time.Millisecond)
	produce(1)
	if parts = <-done; partitionsOf(parts) != "p1:1 " || parts[0].hw != 2 {
		t.Fatalf("woken by an append: %s", partitionsOf(parts))
	}
	// The epoch must be the next one; an unknown id is not found.
	stale := *f
	stale.epoch--
	if code, _, parts = stale.fetch(nil, nil, 0); code != kerr.InvalidFetchSessionEpoch.Code || len(parts) != 0 {
		t.Fatalf("an old epoch: code %d, %s", code, partitionsOf(parts))
	}
	unknown := *f
	unknown.id++
	if code, _, _ = unknown.fetch(nil, nil, 0); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("an unknown session: code %d", code)
	}
	// A moved log start offset is news even without records.
	var del kadm.Offsets
	del.AddOffset("s", 2, 1, -1)
	if resp, err := adm.DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatal(err, resp.Error())
	}
	if code, _, parts = f.fetch(map[int32]int64{1: 2}, nil, 100*time.Millisecond); code != 0 || partitionsOf(parts) != "p2:0 " || parts[0].logStart != 1 {
		t.Fatalf("after DeleteRecords: code %d, %+v", code, parts)
	}
	// A forgotten partition is not fetched any more.
	if code, _, _ = f.fetch(nil, []int32{3}, 0); code != 0 {
		t.Fatalf("forget: code %d", code)
	}
	produce(3)
	if code, _, parts = f.fetch(nil, nil, 200*time.Millisecond); code != 0 || len(parts) != 0 {
		t.Fatalf("a forgotten partition answered: %s", partitionsOf(parts))
	}
	if _, ps := b.sessions.stats(); ps != 3 {
		t.Fatalf("the cache counts %d partitions after forgetting one of 4", ps)
	}
	// A partition added again answers as new; those that returned records
	// went to the end of the session's order in turn (p1 after its append,
	// p3 after it was added again).
	produce(0, 1, 2)
	if _, _, parts = f.fetch(map[int32]int64{3: 1}, nil, time.Second); partitionsOf(parts) != "p0:1 p2:1 p1:1 p3:1 " {
		t.Fatalf("after adding p3 again: %s", partitionsOf(parts))
	}
	// Epoch -1 closes the session.
	closing := *f
	closing.epoch = -1
	if code, id, parts = closing.fetch(nil, nil, 0); code != 0 || id != 0 || len(parts) != 0 {
		t.Fatalf("closing: code %d, id %d, %s", code, id, partitionsOf(parts))
	}
	if code, _, _ = f.fetch(nil, nil, 0); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("a closed session: code %d", code)
	}
	if n, ps := b.sessions.stats(); n != 0 || ps != 0 {
		t.Fatalf("the cache holds %d sessions, %d partitions after the close", n, ps)
	}
}

// TestFetchSessionOrder checks the order of an incremental
// response after partitions moved: the ones that returned records come
// last, in the order they returned them.
func TestFetchSessionOrder(t *testing.T) {
	_, addr := brokerForTest(t, t.TempDir())
	ctx := context.Background()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("o"), kgo.RecordPartitioner(kgo.ManualPartitioner())))
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, nil, "o"); err != nil {
		t.Fatal(err)
	}
	produce := func(ps ...int32) {
		for _, p := range ps {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := &sessionFetcher{t: t, cl: cl, topic: "o", tid: idOf(t, cl, "o")}
	if _, _, parts := f.fetch(map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}, nil, 0); len(parts) != 4 {
		t.Fatalf("new session: %s", partitionsOf(parts))
	}
	produce(0, 2)
	if _, _, parts := f.fetch(nil, nil, time.Second); partitionsOf(parts) != "p0:1 p2:1 " {
		t.Fatalf("%s", partitionsOf(parts))
	}
	produce(0, 1, 2, 3)
	_, _, parts := f.fetch(map[int32]int64{0: 1, 2: 1}, nil, time.Second)
	if got := partitionsOf(parts); got != "p1:1 p3:1 p0:1 p2:1 " {
		t.Fatalf("the session's order after p0 and p2 returned records: %s", got)
	}
}

func TestFetchSessionCache(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := newFetchSessions()
	c.maxSessions, c.maxParts, c.now = 2, 10, func() time.Time { return now }
	full := func(n int) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.SessionEpoch = 12, 0
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "t"
		for p := range int32(n) {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition = p
			ft.Partitions = append(ft.Partitions, fp)
		}
		req.Topics = []kmsg.FetchRequestTopic{ft}
		return req
	}
	a := c.plan(full(3))
	now = now.Add(time.Minute)
	bb := c.plan(full(3))
	if a.session == nil || bb.session == nil || a.session.id == bb.session.id {
		t.Fatal("two sessions were not made")
	}
	// Full, and nobody idle long enough: no session, a full fetch.
	if p := c.plan(full(3)); p.session != nil || len(p.targets) != 3 || p.code != 0 {
		t.Fatalf("a third session in a cache of two: %+v", p)
	}
	// The least recently used one, idle for the eviction time, gives way.
	now = now.Add(fetchSessionIdle)
	p := c.plan(full(2))
	if p.session == nil {
		t.Fatal("an idle session was not evicted for a new one")
	}
	if c.byID[a.session.id] != nil || c.byID[bb.session.id] == nil {
		t.Fatal("the wrong session was evicted")
	}
	if n, parts := c.stats(); n != 2 || parts != 5 {
		t.Fatalf("cache: %d sessions, %d partitions; want 2, 5", n, parts)
	}
	// A session larger than the cache is never made.
	c.remove(bb.session.id)
	if p := c.plan(full(11)); p.session != nil || len(p.targets) != 11 {
		t.Fatal("a session larger than the cache was made")
	}
	// A session that grows past the cache is dropped.
	inc := kmsg.NewPtrFetchRequest()
	inc.Version, inc.SessionID, inc.SessionEpoch = 12, p.session.id, 1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "u"
	for i := range int32(9) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = i
		ft.Partitions = append(ft.Partitions, fp)
	}
	inc.Topics = []kmsg.FetchRequestTopic{ft}
	if q := c.plan(inc); q.code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("a session grown past the cache: code %d", q.code)
	}
	if n, parts := c.stats(); n != 0 || parts != 0 {
		t.Fatalf("cache: %d sessions, %d partitions; want none", n, parts)
	}
	// Below v7 there are no sessions.
	old := full(2)
	old.Version = 6
	if p := c.plan(old); p.session != nil {
		t.Fatal("a v6 fetch made a session")
	}
}

// TestConsumeWithFetchSessions consumes 32 partitions with kgo, which
// fetches incrementally once the broker gives it a session, over rounds
// of production to some of them: every record arrives, once.
func TestConsumeWithFetchSessions(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("many"), kgo.RecordPartitioner(kgo.ManualPartitioner())))
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 32, 1, nil, "many"); err != nil {
		t.Fatal(err)
	}
	cons := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("many"), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	defer cons.Close()
	seen := map[string]int{}
	want := 0
	for round := range 20 {
		for i := range 10 {
			p := int32((round*7 + i*3) % 32)
			v := strconv.Itoa(round) + "/" + strconv.Itoa(i)
			prod.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(v)}, nil)
			want++
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for len(seen) < want {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("round %d: %d of %d records read", round, len(seen), want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s-%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		}
		if round == 0 {
			reg := prometheus.NewRegistry()
			b.RegisterMetrics(reg)
			if n, parts := gauge(t, reg, "chronik_fetch_sessions"), gauge(t, reg, "chronik_fetch_session_partitions"); n != 1 || parts != 32 {
				t.Fatalf("the consumer holds %v sessions of %v partitions; want one of 32", n, parts)
			}
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("%s read %d times", v, n)
		}
	}
	if len(seen) != want {
		t.Fatalf("%d records read, %d produced", len(seen), want)
	}
}

// gauge reads an unlabelled gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
