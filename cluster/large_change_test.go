package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// TestLargeChangeReachesEveryNode: a change as large as one CreateTopics
// may make (10,000 topics with the longest random names, a metadata batch
// that compresses to about 2 MB, over a data partition's
// max.message.bytes) commits and reaches every node, shipped on the fast
// path and as one Raft entry on the fallback path. In a log of 1 MiB
// segments the same change is refused before it is proposed (a committed
// entry the nodes could not write would fail their metadata logs).
func TestLargeChangeReachesEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	for _, fallback := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fallback"}[fallback], func(t *testing.T) {
			all := startThreeWith(t, memberOpts{fallback: fallback, segmentBytes: eventlog.DefaultSegmentBytes}, t.TempDir())
			stopped := false
			defer func() {
				if !stopped {
					stopAll(all)
				}
			}()
			ctrl := settled(t, all)
			var events []eventlog.Event
			for range 10_000 {
				b := make([]byte, 125)
				rand.Read(b)
				events = append(events, topicEvents(hex.EncodeToString(b)[:249], ctrl.id)...)
			}
			appendAsClient(t, all, events, func(s *eventlog.State) bool { return len(s.Topics) == 10_000 })
			waitFor(t, "every topic on every node", all, func(s *eventlog.State) bool { return len(s.Topics) == 10_000 })
			sameMetadata(t, all)
			stopAll(all)
			stopped = true

			small := startThreeWith(t, memberOpts{fallback: fallback}, t.TempDir())
			defer stopAll(small)
			ctrl = settled(t, small)
			if _, err := ctrl.node.Append(30*time.Second, events...); !errors.Is(err, eventlog.ErrTooLarge) {
				t.Fatalf("the same change with 1 MiB segments: %v, want ErrTooLarge", err)
			}
			if _, err := ctrl.node.Append(30*time.Second, topicEvents("after", ctrl.id)...); err != nil {
				t.Fatalf("a change after the refused one: %v", err)
			}
		})
	}
}

// appendAsClient appends events through the controller as a Kafka client
// would: a NOT_CONTROLLER answer (the controller stepped down, which a
// change this large can make happen on a loaded machine) is retried on the
// next controller, unless the change committed meanwhile (done says so).
func appendAsClient(t *testing.T, all []*member, events []eventlog.Event, done func(*eventlog.State) bool) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var ctrl *member
		for deadline := time.Now().Add(20 * time.Second); ctrl == nil; time.Sleep(10 * time.Millisecond) {
			if ctrl = controllerOf(all); ctrl == nil && time.Now().After(deadline) {
				t.Fatal("no controller")
			}
		}
		if attempt > 1 {
			committed := false
			ctrl.meta.View(func(s *eventlog.State) { committed = done(s) })
			if committed {
				return
			}
		}
		_, err := ctrl.node.Append(30*time.Second, events...)
		switch {
		case err == nil:
			return
		case attempt < 3 && errors.Is(err, ErrNotController):
			t.Logf("attempt %d: %v; retrying on the next controller", attempt, err)
			continue
		case attempt > 1 && errors.Is(err, eventlog.ErrRefused):
			// The new controller holds the first attempt (the check above
			// came before it committed that in its term).
			waitFor(t, "the first attempt committed by the next controller", []*member{ctrl}, done)
			return
		}
		t.Fatalf("attempt %d: %v", attempt, err)
	}
}
