package raft

import (
	"fmt"
	"slices"
	"testing"
)

// fencer records, in order, the fences and log reads Raft makes.
type fencer struct{ calls []string }

func (f *fencer) Last() (uint64, uint64) { f.calls = append(f.calls, "last"); return 1, 10 }
func (f *fencer) Fence(term uint64)      { f.calls = append(f.calls, fmt.Sprint("fence ", term)) }

// TestFenceComesBeforeTheVote: a log written outside Raft hears of every
// rise of the term (at restore, on a newer term's message, on a campaign)
// before Raft compares it for a vote in that term.
func TestFenceComesBeforeTheVote(t *testing.T) {
	f := &fencer{}
	n, err := New(Config{ID: 1, Voters: []int32{1, 2, 3}, Log: f}, Restored{HardState: HardState{Term: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.calls, []string{"fence 5"}) {
		t.Fatalf("at restore: %v", f.calls)
	}
	f.calls = nil
	n.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 7, LogTerm: 1, Index: 10})
	if len(f.calls) < 2 || f.calls[0] != "fence 7" || !slices.Contains(f.calls[1:], "last") {
		t.Fatalf("a vote in term 7: %v, want the fence before the log is read", f.calls)
	}
	f.calls = nil
	n.campaign(false, false)
	if len(f.calls) < 2 || f.calls[0] != "fence 8" {
		t.Fatalf("a campaign in term 8: %v, want the fence first", f.calls)
	}
}
