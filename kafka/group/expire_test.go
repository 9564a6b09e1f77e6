package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestExpireOffsets: offsets nothing uses expire after the retention, as in
// Kafka: a group committing without members by commit time, an empty
// consumer group from when it became empty, and a stable group's topics
// that no member subscribes to; a subscribed topic's stay. Expired groups
// are gone, also after a restart.
func TestExpireOffsets(t *testing.T) {
	cfg := fastConfig()
	cfg.OffsetsRetention = time.Hour
	c, reopen := testCoordinator(t, cfg)
	commit := func(group, member string, gen int32, topic string, offsets ...int64) {
		t.Helper()
		r := within(t, time.Second, c.Commit(commitReq(group, member, gen, topic, offsets...)))
		if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %s: %d", group, code)
		}
	}
	// A consumer group whose member subscribes to "orders".
	joinConsumer := func(group string) string {
		t.Helper()
		meta := (&kmsg.ConsumerMemberMetadata{Topics: []string{"orders"}}).AppendTo(nil)
		req := joinReq(group, "", 30*time.Second, time.Second, "range")
		req.Protocols[0].Metadata = meta
		id := c.Join(req, "client", "/127.0.0.1")().MemberID
		req.MemberID = id
		if r := within(t, time.Second, c.Join(req, "client", "/127.0.0.1")); r.ErrorCode != 0 {
			t.Fatalf("join %s: %d", group, r.ErrorCode)
		}
		within(t, time.Second, c.Sync(syncReq(group, id, 1, map[string]string{id: "orders:0"})))
		return id
	}
	commit("standalone", "", -1, "t", 1, 2)
	stable := joinConsumer("stable")
	commit("stable", stable, 1, "orders", 5)
	commit("stable", stable, 1, "old-topic", 6)
	left := joinConsumer("left")
	commit("left", left, 1, "orders", 7)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "left", left
	if r := c.Leave(leave); r.ErrorCode != 0 {
		t.Fatalf("leave: %d", r.ErrorCode)
	}

	now := time.Now()
	if n, err := c.ExpireOffsets(now.Add(30 * time.Minute)); n != 0 || err != nil {
		t.Fatalf("within the retention: %d expired, %v", n, err)
	}
	if n, err := c.ExpireOffsets(now.Add(2 * time.Hour)); n != 4 || err != nil {
		t.Fatalf("after the retention: %d expired (want 4: standalone's 2, left's, stable's old-topic), %v", n, err)
	}
	check := func(when string) {
		t.Helper()
		for group, want := range map[string]int{"standalone": 0, "left": 0, "stable": 1} {
			if got := fetched(t, c, group); len(got) != want {
				t.Fatalf("%s: group %s has offsets %v, want %d topics", when, group, got, want)
			}
		}
		if got := fetched(t, c, "stable"); len(got["orders"]) != 1 || got["orders"][0] != 5 {
			t.Fatalf("%s: the stable group's subscribed offsets: %v", when, got)
		}
		for _, l := range c.List() {
			if l.Name == "standalone" || l.Name == "left" {
				t.Fatalf("%s: expired group %s still listed", when, l.Name)
			}
		}
	}
	check("after expiry")
	c = reopen()
	check("after a restart")
}
