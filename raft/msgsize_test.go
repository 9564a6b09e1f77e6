package raft

import (
	"bytes"
	"testing"
)

// TestAppendMessagesAreBoundedInBytes: entries go to a follower in
// messages of at most MaxBytesPerMsg of data (one entry however large),
// so that a message always fits in a transport frame; they all arrive.
func TestAppendMessagesAreBoundedInBytes(t *testing.T) {
	w := &world{t: t, nodes: map[int32]*simNode{}, cut: map[int32]bool{}}
	w.run("nodes 3")
	w.cfg.MaxBytesPerMsg = 3 << 20
	for _, id := range w.ids {
		w.start(id)
	}
	w.run("campaign 1")
	w.run("deliver")
	if w.node(1).role != Leader {
		t.Fatal("node 1 did not become the leader")
	}
	// Proposed while node 3 is cut off: it gets them all later at once.
	w.cut[3] = true
	sizes := []int{1 << 20, 1 << 20, 2 << 20, 5 << 20, 1, 1 << 20}
	for i, n := range sizes {
		if err := w.node(1).Propose(bytes.Repeat([]byte{byte(i)}, n)); err != nil {
			t.Fatal(err)
		}
		w.process(1)
		w.run("deliver")
	}
	w.cut[3] = false
	var apps int
	for range 50 {
		w.run("tick 1")
		for len(w.queue) > 0 {
			m := w.queue[0]
			w.queue = w.queue[1:]
			if m.Type == MsgApp && m.To == 3 && len(m.Entries) > 0 {
				apps++
				total := 0
				for _, e := range m.Entries {
					total += len(e.Data)
				}
				if total > w.cfg.MaxBytesPerMsg && len(m.Entries) > 1 {
					t.Fatalf("an append of %d entries carries %d bytes, more than %d", len(m.Entries), total, w.cfg.MaxBytesPerMsg)
				}
			}
			w.node(m.To).Step(m)
			w.process(m.To)
		}
	}
	if got, want := w.node(3).log.lastIndex(), w.node(1).log.lastIndex(); got != want {
		t.Fatalf("node 3's log ends at %d, the leader's at %d", got, want)
	}
	if apps < 3 {
		t.Fatalf("%d appends carried the entries to node 3: they were not split", apps)
	}
}
