package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// testCoordinator opens a coordinator on an in-memory store; reopen gives a
// new one on the same data, as after a restart.
func testCoordinator(t *testing.T, cfg Config) (c *Coordinator, reopen func() *Coordinator) {
	t.Helper()
	fs := segmenttest.NewMemFS()
	var store *segment.Store
	open := func() *Coordinator {
		var err error
		store, err = segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		lcfg := segment.DefaultConfig()
		lcfg.SegmentBytes, lcfg.PreallocateBytes = 1<<20, 64<<10 // small: MemFS copies bytes
		l, err := store.Open(Topic, 0, lcfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(l, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c = open()
	t.Cleanup(func() { c.Close(); store.Close() })
	return c, func() *Coordinator {
		c.Close()
		store.Close()
		c = open()
		return c
	}
}

func fastConfig() Config {
	return Config{MinSessionTimeout: 10 * time.Millisecond, MaxSessionTimeout: time.Minute}
}

func joinReq(group, member string, session, rebalance time.Duration, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group, req.MemberID, req.ProtocolType = group, member, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session/time.Millisecond), int32(rebalance/time.Millisecond)
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte("meta-" + p)})
	}
	return req
}

// join does the two-step join of a new member (MEMBER_ID_REQUIRED, then
// the join with the id) and returns the wait for the second answer.
func join(t *testing.T, c *Coordinator, group string, session, rebalance time.Duration) (string, func() *kmsg.JoinGroupResponse) {
	t.Helper()
	first := c.Join(joinReq(group, "", session, rebalance, "range"), "client", "/127.0.0.1")()
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED and an id", first.ErrorCode, first.MemberID)
	}
	return first.MemberID, c.Join(joinReq(group, first.MemberID, session, rebalance, "range"), "client", "/127.0.0.1")
}

func syncReq(group, member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	return req
}

func heartbeat(c *Coordinator, group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	return c.Heartbeat(req).ErrorCode
}

func within[T any](t *testing.T, d time.Duration, wait func() T) T {
	t.Helper()
	got := make(chan T, 1)
	go func() { got <- wait() }()
	select {
	case v := <-got:
		return v
	case <-time.After(d):
		t.Fatalf("no answer within %v", d)
		panic("unreachable")
	}
}

func TestTwoMembersJoinSyncAndLeave(t *testing.T) {
	c, _ := testCoordinator(t, fastConfig())
	const session, rebalance = 5 * time.Second, 5 * time.Second
	a, waitA := join(t, c, "g", session, rebalance)
	ra := within(t, time.Second, waitA)
	if ra.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != a || len(ra.Members) != 1 || *ra.Protocol != "range" {
		t.Fatalf("lone join: %+v", ra)
	}
	sa := within(t, time.Second, c.Sync(syncReq("g", a, 1, map[string]string{a: "all"})))
	if sa.ErrorCode != 0 || string(sa.MemberAssignment) != "all" {
		t.Fatalf("sync: %+v", sa)
	}
	if d := c.Describe("g"); d.State != "Stable" || len(d.Members) != 1 {
		t.Fatalf("describe: %+v", d)
	}

	// A second member makes the group rebalance: the first learns it by
	// heartbeat and rejoins; both get generation 2.
	b, waitB := join(t, c, "g", session, rebalance)
	if code := heartbeat(c, "g", a, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d, want REBALANCE_IN_PROGRESS", code)
	}
	if code := heartbeat(c, "g", "nobody", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of a stranger: %d", code)
	}
	ra = within(t, time.Second, c.Join(joinReq("g", a, session, rebalance, "range"), "client", "/127.0.0.1"))
	rb := within(t, time.Second, waitB)
	if ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != a || rb.LeaderID != a || len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("rejoin: leader sees %+v, follower %+v", ra, rb)
	}
	waitSyncB := c.Sync(syncReq("g", b, 2, nil)) // waits for the leader
	sa = within(t, time.Second, c.Sync(syncReq("g", a, 2, map[string]string{a: "p0", b: "p1"})))
	sb := within(t, time.Second, waitSyncB)
	if string(sa.MemberAssignment) != "p0" || string(sb.MemberAssignment) != "p1" {
		t.Fatalf("assignments: %q %q", sa.MemberAssignment, sb.MemberAssignment)
	}
	if code := heartbeat(c, "g", b, 1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat of an old generation: %d", code)
	}

	// The leader leaves: b rejoins alone and leads.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a}, {MemberID: "ghost"}}
	lr := c.Leave(leave)
	if lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr.Members)
	}
	rb = within(t, time.Second, c.Join(joinReq("g", b, session, rebalance, "range"), "client", "/127.0.0.1"))
	if rb.Generation != 3 || rb.LeaderID != b {
		t.Fatalf("after the leader left: %+v", rb)
	}
}

func TestSessionAndRebalanceTimeouts(t *testing.T) {
	c, _ := testCoordinator(t, fastConfig())
	a, waitA := join(t, c, "g", 5*time.Second, 300*time.Millisecond)
	within(t, time.Second, waitA)
	within(t, time.Second, c.Sync(syncReq("g", a, 1, map[string]string{a: "x"})))

	// b joins; a never rejoins: after the rebalance timeout the join
	// completes without it, long before a's session would end.
	b, waitB := join(t, c, "g", 5*time.Second, 300*time.Millisecond)
	start := time.Now()
	rb := within(t, 3*time.Second, waitB)
	if rb.ErrorCode != 0 || rb.Generation != 2 || rb.LeaderID != b || len(rb.Members) != 1 {
		t.Fatalf("join without the silent member: %+v", rb)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("the join waited %v for a silent member, want the rebalance timeout (300ms)", waited)
	}
	within(t, time.Second, c.Sync(syncReq("g", b, 2, nil)))
	if code := heartbeat(c, "g", a, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d", code)
	}

	// A member whose heartbeats stop is removed after its session.
	c2, _ := testCoordinator(t, fastConfig())
	x, waitX := join(t, c2, "h", 400*time.Millisecond, time.Second)
	within(t, time.Second, waitX)
	within(t, time.Second, c2.Sync(syncReq("h", x, 1, nil)))
	if code := heartbeat(c2, "h", x, 1); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	for range 6 { // heartbeats keep it for longer than a session
		time.Sleep(100 * time.Millisecond)
		if code := heartbeat(c2, "h", x, 1); code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	time.Sleep(800 * time.Millisecond)
	if code := heartbeat(c2, "h", x, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after the session expired: %d", code)
	}
	if d := c2.Describe("h"); d.State != "Dead" {
		t.Fatalf("a group without members or offsets: %s, want Dead", d.State)
	}
}

func TestPendingSyncTimeout(t *testing.T) {
	c, _ := testCoordinator(t, fastConfig())
	a, waitA := join(t, c, "g", 5*time.Second, 150*time.Millisecond)
	within(t, time.Second, waitA)
	// The leader never syncs: the follower's sync is not left hanging.
	b, waitB := join(t, c, "g", 5*time.Second, 150*time.Millisecond)
	ra := within(t, time.Second, c.Join(joinReq("g", a, 5*time.Second, 150*time.Millisecond, "range"), "c", "h"))
	rb := within(t, time.Second, waitB)
	if ra.LeaderID != a || rb.Generation != ra.Generation {
		t.Fatalf("join: %+v %+v", ra, rb)
	}
	sb := within(t, 2*time.Second, c.Sync(syncReq("g", b, rb.Generation, nil)))
	if sb.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("follower's sync when the leader never assigns: %d, want REBALANCE_IN_PROGRESS", sb.ErrorCode)
	}
}

func TestJoinRefusals(t *testing.T) {
	c, _ := testCoordinator(t, Config{MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute, MaxGroupSize: 1})
	for _, tc := range []struct {
		name string
		req  *kmsg.JoinGroupRequest
		want int16
	}{
		{"empty group id", joinReq("", "", 5*time.Second, time.Second, "range"), kerr.InvalidGroupID.Code},
		{"session too short", joinReq("g", "", 10*time.Millisecond, time.Second, "range"), kerr.InvalidSessionTimeout.Code},
		{"session too long", joinReq("g", "", time.Hour, time.Second, "range"), kerr.InvalidSessionTimeout.Code},
		{"no protocols", joinReq("g", "", 5*time.Second, time.Second), kerr.InconsistentGroupProtocol.Code},
		{"unknown member", joinReq("g", "who", 5*time.Second, time.Second, "range"), kerr.UnknownMemberID.Code},
	} {
		if got := c.Join(tc.req, "c", "h")().ErrorCode; got != tc.want {
			t.Errorf("%s: error %d, want %d", tc.name, got, tc.want)
		}
	}
	a, wait := join(t, c, "g", 5*time.Second, time.Second)
	within(t, time.Second, wait)
	within(t, time.Second, c.Sync(syncReq("g", a, 1, nil)))
	other := joinReq("g", "", 5*time.Second, time.Second, "roundrobin")
	other.Version = 3
	if got := c.Join(other, "c", "h")().ErrorCode; got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("a protocol no member supports: %d", got)
	}
	full := joinReq("g", "", 5*time.Second, time.Second, "range")
	full.Version = 3
	if got := c.Join(full, "c", "h")().ErrorCode; got != kerr.GroupMaxSizeReached.Code {
		t.Errorf("a member too many: %d, want GROUP_MAX_SIZE_REACHED", got)
	}
}

func commitReq(group, member string, gen int32, topic string, offsets ...int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, member, gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	for p, o := range offsets {
		meta := "m"
		t.Partitions = append(t.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: int32(p), Offset: o, LeaderEpoch: 3, Metadata: &meta})
	}
	req.Topics = append(req.Topics, t)
	return req
}

func fetched(t *testing.T, c *Coordinator, group string) map[string][]int64 {
	t.Helper()
	topics, code := c.Fetch(group, nil, false)
	if code != 0 {
		t.Fatalf("fetch: %d", code)
	}
	out := map[string][]int64{}
	for _, tp := range topics {
		for _, p := range tp.Partitions {
			out[tp.Topic] = append(out[tp.Topic], p.Offset)
		}
	}
	return out
}

func TestOffsetsSurviveRestart(t *testing.T) {
	c, reopen := testCoordinator(t, fastConfig())
	resp := within(t, time.Second, c.Commit(commitReq("standalone", "", -1, "t", 10, 20)))
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("commit: %+v", resp)
		}
	}
	within(t, time.Second, c.Commit(commitReq("standalone", "", -1, "t", 11)))

	a, wait := join(t, c, "members", 30*time.Second, time.Second)
	within(t, time.Second, wait)
	if r := within(t, time.Second, c.Commit(commitReq("members", a, 1, "t", 5))); r.Topics[0].Partitions[0].ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit before sync: %+v", r)
	}
	within(t, time.Second, c.Sync(syncReq("members", a, 1, map[string]string{a: "t:0"})))
	if r := within(t, time.Second, c.Commit(commitReq("members", a, 0, "t", 5))); r.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("commit of a wrong generation: %+v", r)
	}
	if r := within(t, time.Second, c.Commit(commitReq("members", "stranger", 1, "t", 5))); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("commit of a stranger: %+v", r)
	}
	if r := within(t, time.Second, c.Commit(commitReq("members", a, 1, "t", 7))); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("member commit: %+v", r)
	}
	gone := within(t, time.Second, c.Commit(commitReq("gone", "", -1, "t", 1)))
	if gone.Topics[0].Partitions[0].ErrorCode != 0 || within(t, time.Second, c.Delete("gone")) != 0 {
		t.Fatal("commit and delete of a group")
	}
	if code := within(t, time.Second, c.Delete("members")); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete of a group with members: %d", code)
	}

	c = reopen()
	if got := fetched(t, c, "standalone"); len(got["t"]) != 2 || got["t"][0] != 11 || got["t"][1] != 20 {
		t.Fatalf("standalone offsets after restart: %v", got)
	}
	if got := fetched(t, c, "members"); len(got["t"]) != 1 || got["t"][0] != 7 {
		t.Fatalf("member offsets after restart: %v", got)
	}
	if got := fetched(t, c, "gone"); len(got) != 0 {
		t.Fatalf("a deleted group's offsets came back: %v", got)
	}
	// The member carries on in its generation without rejoining.
	if code := heartbeat(c, "members", a, 1); code != 0 {
		t.Fatalf("heartbeat after restart: %d", code)
	}
	if d := c.Describe("members"); d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "t:0" {
		t.Fatalf("restored group: %+v", d)
	}
	topics, _ := c.Fetch("standalone", []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 5}}}, false)
	if p := topics[0].Partitions; p[0].Offset != 11 || p[0].LeaderEpoch != 3 || *p[0].Metadata != "m" || p[1].Offset != -1 {
		t.Fatalf("fetch of given partitions: %+v", p)
	}
}

// TestLargeCommitIsWrittenInBatches: a commit of more offsets than one
// batch of the offsets partition may hold (max.message.bytes, 1 MiB here)
// is stored in several and answered once all are durable; every offset is
// served, before and after a restart.
func TestLargeCommitIsWrittenInBatches(t *testing.T) {
	c, reopen := testCoordinator(t, fastConfig())
	offsets := make([]int64, 5000)
	for p := range offsets {
		offsets[p] = int64(p) * 3
	}
	req := commitReq("big", "", -1, "t", offsets...)
	meta := strings.Repeat("m", 300)
	for i := range req.Topics[0].Partitions {
		req.Topics[0].Partitions[i].Metadata = &meta
	}
	if n := len(req.AppendTo(nil)); n < 3*segment.DefaultMaxMessageBytes/2 {
		t.Fatalf("the commit is %d bytes, want well over max.message.bytes", n)
	}
	resp := within(t, 5*time.Second, c.Commit(req))
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("partition %d: error %d", p.Partition, p.ErrorCode)
		}
	}
	check := func(when string) {
		got := fetched(t, c, "big")["t"]
		if len(got) != len(offsets) {
			t.Fatalf("%s: %d offsets, want %d", when, len(got), len(offsets))
		}
		for p, o := range got {
			if o != offsets[p] {
				t.Fatalf("%s: partition %d at %d, want %d", when, p, o, offsets[p])
			}
		}
	}
	check("before a restart")
	c = reopen()
	check("after a restart")
}

// TestLargeOffsetDeleteIsWrittenInBatches: deleting more offsets than one
// batch of tombstones may hold (long topic names make the keys large) is
// stored in several; none comes back after a restart.
func TestLargeOffsetDeleteIsWrittenInBatches(t *testing.T) {
	c, reopen := testCoordinator(t, fastConfig())
	topic := strings.Repeat("t", 249) // the longest name Kafka allows
	offsets := make([]int64, 5000)
	commit := within(t, 5*time.Second, c.Commit(commitReq("big", "", -1, topic, offsets...)))
	if commit.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v", commit.Topics[0].Partitions[0])
	}
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "big"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = topic
	for p := range offsets {
		dt.Partitions = append(dt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: int32(p)})
	}
	req.Topics = append(req.Topics, dt)
	if tombstones := len(offsets) * (len(topic) + len("big") + 8); tombstones < segment.DefaultMaxMessageBytes {
		t.Fatalf("%d bytes of tombstone keys, want more than max.message.bytes", tombstones)
	}
	if resp := within(t, 5*time.Second, c.DeleteOffsets(req)); resp.ErrorCode != 0 {
		t.Fatalf("offset delete: error %d", resp.ErrorCode)
	}
	c = reopen()
	if got := fetched(t, c, "big"); len(got) != 0 {
		t.Fatalf("%d offsets came back after a restart", len(got[topic]))
	}
}

func TestInitialRebalanceDelayGathersMembers(t *testing.T) {
	cfg := fastConfig()
	cfg.InitialRebalanceDelay = 200 * time.Millisecond
	c, _ := testCoordinator(t, cfg)
	_, waitA := join(t, c, "g", 5*time.Second, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	_, waitB := join(t, c, "g", 5*time.Second, 5*time.Second)
	ra, rb := within(t, 2*time.Second, waitA), within(t, 2*time.Second, waitB)
	if ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("both members should be in the first generation: %d %d", ra.Generation, rb.Generation)
	}
}

func TestCloseAnswersWaiters(t *testing.T) {
	c, _ := testCoordinator(t, fastConfig())
	a, waitA := join(t, c, "g", 5*time.Second, 5*time.Second)
	within(t, time.Second, waitA)
	_, waitB := join(t, c, "g", 5*time.Second, time.Minute) // waits for a to rejoin
	c.Close()
	if r := within(t, time.Second, waitB); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join answered at close with %d", r.ErrorCode)
	}
	_ = a
}

func FuzzReplayRecord(f *testing.F) {
	k := kmsg.NewOffsetCommitKey()
	k.Group, k.Topic = "g", "t"
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	f.Add(offsetKey("g", "t", 1), v.AppendTo(nil))
	gv := kmsg.GroupMetadataValue{Version: 3, ProtocolType: "consumer", Members: []kmsg.GroupMetadataValueMember{{MemberID: "m", SessionTimeoutMillis: 1000, RebalanceTimeoutMillis: 1000}}}
	f.Add(groupKey("g"), gv.AppendTo(nil))
	f.Add(groupKey("g"), []byte(nil))
	f.Add([]byte{0}, []byte{1, 2})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c := &Coordinator{groups: map[string]*group{}}
		if err := c.apply(segment.Record{Key: key, Value: value}); err != nil {
			return
		}
		for _, g := range c.groups {
			_ = g.metadataValue().AppendTo(nil)
		}
	})
}
