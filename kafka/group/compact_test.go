package group

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestCompactKeepsTheState: a compacted offsets partition is a fraction of
// its size and replays to what the whole log did: committed offsets, a
// group with a member, deleted groups staying deleted, including offsets
// committed while their group was deleted (no tombstone of their own:
// compaction by key would bring them back). Commits after a compaction
// survive a restart too.
func TestCompactKeepsTheState(t *testing.T) {
	cfg := fastConfig()
	cfg.CompactBytes = 16 << 10
	c, reopen := testCoordinator(t, cfg)
	commit := func(group string, offsets ...int64) {
		t.Helper()
		r := within(t, time.Second, c.Commit(commitReq(group, "", -1, "t", offsets...)))
		if r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit %s: %+v", group, r)
		}
	}
	for i := range 200 {
		commit("standalone", int64(i), int64(2*i), int64(3*i))
		commit(fmt.Sprintf("g%d", i%10), int64(i))
	}
	a, wait := join(t, c, "members", 30*time.Second, time.Second)
	within(t, time.Second, wait)
	within(t, time.Second, c.Sync(syncReq("members", a, 1, map[string]string{a: "t:0"})))
	if r := within(t, time.Second, c.Commit(commitReq("members", a, 1, "t", 7))); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("member commit: %+v", r)
	}
	commit("gone", 1)
	if within(t, time.Second, c.Delete("gone")) != 0 {
		t.Fatal("delete of a group")
	}
	commit("ghost", 1)
	inFlight := c.Commit(commitReq("ghost", "", -1, "t", 5, 6)) // appended, not yet applied
	if within(t, time.Second, c.Delete("ghost")) != 0 {
		t.Fatal("delete of a group with a commit in flight")
	}
	within(t, time.Second, inFlight)

	state := func(c *Coordinator) map[string]any {
		out := map[string]any{}
		for _, g := range []string{"standalone", "g0", "g9", "members", "gone", "ghost"} {
			out[g] = fetched(t, c, g)
		}
		d := c.Describe("members")
		desc := []any{d.State, d.ProtocolType, d.Protocol}
		for _, m := range d.Members {
			desc = append(desc, m.MemberID, string(m.MemberAssignment))
		}
		out["members/describe"] = desc
		return out
	}
	want := state(c)
	if got := fetched(t, c, "ghost"); len(got) != 0 {
		t.Fatalf("a deleted group has offsets: %v", got)
	}
	before := c.log.Size()
	done, err := c.Compact()
	if err != nil || !done {
		t.Fatalf("compact: %v, %v", done, err)
	}
	if after := c.log.Size(); after*4 > before || c.log.StartOffset() == 0 {
		t.Fatalf("compacted from %d to %d bytes, log start %d", before, after, c.log.StartOffset())
	}
	if done, err := c.Compact(); done || err != nil {
		t.Fatalf("a second compaction right after: %v, %v", done, err)
	}
	commit("standalone", 1000)
	want["standalone"] = map[string][]int64{"t": {1000, 398, 597}}

	c = reopen()
	if got := state(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after compaction and restart:\n got %v\nwant %v", got, want)
	}
	if code := heartbeat(c, "members", a, 1); code != 0 {
		t.Fatalf("the member's heartbeat after compaction and restart: %d", code)
	}
	topics, _ := c.Fetch("standalone", []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{1}}}, false)
	if p := topics[0].Partitions[0]; p.LeaderEpoch != 3 || *p.Metadata != "m" {
		t.Fatalf("offset details after compaction: %+v", p)
	}
}

// TestCrashWhileCompacting crashes the file system at random moments of a
// compaction: the offsets partition reopens with the state it had before.
func TestCrashWhileCompacting(t *testing.T) {
	lcfg := segment.DefaultConfig()
	lcfg.SegmentBytes, lcfg.PreallocateBytes = 64<<10, 16<<10
	open := func(fs *segmenttest.MemFS) (*segment.Store, *Coordinator) {
		t.Helper()
		st, err := segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.Open(Topic, 0, lcfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg := fastConfig()
		cfg.CompactBytes = 16 << 10
		c, err := Open(l, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st, c
	}
	state := func(c *Coordinator) map[string]map[string][]int64 {
		c.mu.Lock()
		names := sortedKeys(c.groups)
		c.mu.Unlock()
		out := map[string]map[string][]int64{}
		for _, g := range names {
			out[g] = fetched(t, c, g)
		}
		return out
	}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fs := segmenttest.NewMemFS()
		st, c := open(fs)
		for i := range 300 {
			g := fmt.Sprintf("g%d", i%7)
			within(t, time.Second, c.Commit(commitReq(g, "", -1, "t", int64(i), int64(2*i))))
			if i%50 == 49 {
				within(t, time.Second, c.Delete(fmt.Sprintf("g%d", (i/50)%7)))
			}
		}
		want := state(c)
		done := make(chan struct{})
		go func() {
			c.Compact()
			close(done)
		}()
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		crashed := fs.Crash(rng)
		<-done
		c.Close()
		st.Close()

		st, c = open(crashed)
		if got := state(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: state after a crash during a compaction:\n got %v\nwant %v", seed, got, want)
		}
		c.Close()
		st.Close()
	}
}
