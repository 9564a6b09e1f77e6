package kafka

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// groupConsumer is a kgo group member that records what it is assigned and
// what it reads.
type groupConsumer struct {
	cl *kgo.Client

	mu       sync.Mutex
	assigned map[int32]bool
	read     map[string]bool
}

func newGroupConsumer(t *testing.T, addr, group, topic string) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{assigned: map[int32]bool{}, read: map[string]bool{}}
	onAssigned := func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
		gc.mu.Lock()
		defer gc.mu.Unlock()
		for _, p := range ps[topic] {
			gc.assigned[p] = true
		}
	}
	onRevoked := func(_ context.Context, cl *kgo.Client, ps map[string][]int32) {
		gc.mu.Lock()
		for _, p := range ps[topic] {
			delete(gc.assigned, p)
		}
		gc.mu.Unlock()
		cl.CommitUncommittedOffsets(context.Background())
	}
	gc.cl = must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(100*time.Millisecond), kgo.RebalanceTimeout(5*time.Second),
		kgo.Balancers(kgo.RoundRobinBalancer()),
		kgo.OnPartitionsAssigned(onAssigned), kgo.OnPartitionsRevoked(onRevoked), kgo.OnPartitionsLost(onRevoked),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	return gc
}

// poll reads for a moment and records what it got.
func (gc *groupConsumer) poll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	fs := gc.cl.PollFetches(ctx)
	fs.EachError(func(topic string, p int32, err error) {
		if err != context.DeadlineExceeded {
			t.Errorf("fetch %s/%d: %v", topic, p, err)
		}
	})
	gc.mu.Lock()
	defer gc.mu.Unlock()
	fs.EachRecord(func(r *kgo.Record) { gc.read[string(r.Value)] = true })
}

func (gc *groupConsumer) partitions() []int32 {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	var out []int32
	for p := range gc.assigned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// pollUntil polls every consumer until cond holds.
func pollUntil(t *testing.T, what string, cond func() bool, gcs ...*groupConsumer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for i, gc := range gcs {
				t.Logf("consumer %d: partitions %v, %d records", i, gc.partitions(), len(gc.read))
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		var wg sync.WaitGroup
		for _, gc := range gcs {
			wg.Go(func() { gc.poll(t) })
		}
		wg.Wait()
	}
}

func produceValues(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 4), Value: fmt.Appendf(nil, "v%04d", i)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerGroupRebalancesAndKeepsOffsetsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	addr, stop := runBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner())))
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	produceValues(t, prod, "events", 0, 200)

	a := newGroupConsumer(t, addr, "readers", "events")
	defer a.cl.Close()
	pollUntil(t, "the first member to read everything", func() bool { return len(a.read) == 200 && len(a.partitions()) == 4 }, a)

	// A second member: the partitions are split between the two.
	b := newGroupConsumer(t, addr, "readers", "events")
	pollUntil(t, "the rebalance to split the partitions", func() bool {
		pa, pb := a.partitions(), b.partitions()
		return len(pa) == 2 && len(pb) == 2
	}, a, b)
	produceValues(t, prod, "events", 200, 200)
	pollUntil(t, "both members to read the new records", func() bool {
		n := 0
		for i := 200; i < 400; i++ {
			v := fmt.Sprintf("v%04d", i)
			if a.read[v] || b.read[v] {
				n++
			}
		}
		return n == 200
	}, a, b)
	for _, gc := range []*groupConsumer{a, b} {
		for v := range gc.read {
			var i int
			fmt.Sscanf(v, "v%04d", &i)
			if i >= 200 && !gc.assigned[int32(i%4)] {
				t.Errorf("a member read %s from partition %d, which it does not own (%v)", v, i%4, gc.partitions())
			}
		}
	}
	described, err := adm.DescribeGroups(ctx, "readers")
	if err != nil || described["readers"].State != "Stable" || len(described["readers"].Members) != 2 {
		t.Fatalf("describe: %v %+v", err, described["readers"])
	}

	// b leaves: a takes everything back at once (no session timeout wait).
	if err := b.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	b.cl.Close()
	pollUntil(t, "the remaining member to own every partition", func() bool { return len(a.partitions()) == 4 }, a)
	if err := a.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, "readers")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if o, _ := committed.Lookup("events", p); o.At != 100 {
			t.Errorf("partition %d: committed %d, want 100", p, o.At)
		}
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil || len(listed.Groups()) != 1 {
		t.Fatalf("list groups: %v %v", err, listed.Groups())
	}
	a.cl.Close()
	prod.Close()
	stop()

	// After a restart the offsets are there, and a new member starts from
	// them: it reads only what is produced now.
	addr = startBroker(t, dir)
	prod = must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner())))
	defer prod.Close()
	adm = kadm.NewClient(prod)
	committed, err = adm.FetchOffsets(ctx, "readers")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if o, _ := committed.Lookup("events", p); o.At != 100 {
			t.Errorf("after restart, partition %d: committed %d, want 100", p, o.At)
		}
	}
	c := newGroupConsumer(t, addr, "readers", "events")
	defer c.cl.Close()
	produceValues(t, prod, "events", 400, 4)
	pollUntil(t, "the new member to read the new records", func() bool { return len(c.read) >= 4 }, c)
	if len(c.read) != 4 {
		t.Fatalf("the new member read %d records, want the 4 produced after the commit", len(c.read))
	}
	c.cl.Close()

	// Once empty, the group can be deleted, and its offsets go with it.
	deleted, err := adm.DeleteGroups(ctx, "readers")
	if err != nil || deleted["readers"].Err != nil {
		t.Fatalf("delete group: %v %v", err, deleted["readers"].Err)
	}
	committed, err = adm.FetchOffsets(ctx, "readers")
	if err != nil || len(committed) != 0 {
		t.Fatalf("offsets after delete: %v %v", err, committed)
	}
}

// TestOffsetsPartitionHasNoRetention: retention.ms would delete a quiet
// group's last commit once its segment is a week old, and a restart would
// lose its offsets; the partition is compacted instead.
func TestOffsetsPartitionHasNoRetention(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	if cfg := b.groups.Log().Config(); cfg.RetentionMs >= 0 || cfg.RetentionBytes >= 0 {
		t.Fatalf("offsets partition retention.ms %v, retention.bytes %d: want none", cfg.RetentionMs, cfg.RetentionBytes)
	}
}

// TestLargeGroupMetadataIsStored: a group whose metadata record (every
// member's subscription and assignment) is larger than a data partition's
// max.message.bytes (as a large Kafka Streams application's is) is stored:
// its sync completes instead of the group rebalancing again and again.
func TestLargeGroupMetadataIsStored(t *testing.T) {
	dir := t.TempDir()
	noDelay := func(c *Config) { c.Groups.InitialRebalanceDelay = 0 }
	_, addr, stop := newTestBroker(t, dir, noDelay)
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = "large", 10_000, 10_000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("subscription")}}
	var joined *kmsg.JoinGroupResponse
	for range 2 { // the first join is told its member id
		resp, err := join.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if joined = resp; resp.ErrorCode == kerr.MemberIDRequired.Code {
			join.MemberID = resp.MemberID
			continue
		}
		break
	}
	if joined.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(joined.ErrorCode))
	}
	assignment := bytes.Repeat([]byte("partition"), 300_000) // 2.7 MB
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID = "large", joined.Generation, joined.MemberID
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: joined.MemberID, MemberAssignment: assignment}}
	synced, err := sync.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if synced.ErrorCode != 0 || !bytes.Equal(synced.MemberAssignment, assignment) {
		t.Fatalf("sync of a group with %d bytes of assignment: %v", len(assignment), kerr.ErrorForCode(synced.ErrorCode))
	}
	cl.Close()
	stop()

	// The record is read back at the next start.
	_, addr, stop = newTestBroker(t, dir, noDelay)
	defer stop()
	cl = must(kgo.NewClient(kgo.SeedBrokers(addr)))
	defer cl.Close()
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"large"}
	described, err := describe.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if g := described.Groups; len(g) != 1 || len(g[0].Members) != 1 || !bytes.Equal(g[0].Members[0].MemberAssignment, assignment) {
		t.Fatalf("after a restart the group is not as stored: %d groups", len(g))
	}
}
