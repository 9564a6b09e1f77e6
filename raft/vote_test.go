package raft

import "testing"

// TestCampaignOfANonVoterIsRefused: a node that takes itself for a voter
// where this one does not (it was given other voters) gets no vote, and
// its term is not taken: a leader is not deposed by it.
func TestCampaignOfANonVoterIsRefused(t *testing.T) {
	for _, typ := range []MsgType{MsgPreVote, MsgVote} {
		n, err := New(Config{ID: 1, Voters: []int32{1, 2, 3}}, Restored{HardState: HardState{Term: 5}})
		if err != nil {
			t.Fatal(err)
		}
		n.Step(Message{Type: typ, From: 4, To: 1, Term: 9, LogTerm: 5, Index: 100})
		if n.term != 5 || n.vote != None {
			t.Errorf("%v from node 4: term %d, vote %d; want term 5, no vote", typ, n.term, n.vote)
		}
		if len(n.msgs) != 1 || n.msgs[0].To != 4 || !n.msgs[0].Reject || n.msgs[0].Type != voteResp(typ) {
			t.Errorf("%v from node 4 answered %v; want one refusal", typ, n.msgs)
		}
		// A voter's campaign is heard.
		n.msgs = nil
		n.Step(Message{Type: typ, From: 2, To: 1, Term: 9, LogTerm: 5, Index: 100})
		if len(n.msgs) != 1 || n.msgs[0].Reject {
			t.Errorf("%v from node 2 answered %v; want it granted", typ, n.msgs)
		}
	}
}

// TestMayVote: a voter whose MayVote says no refuses votes and pre-votes.
func TestMayVote(t *testing.T) {
	may := false
	n, err := New(Config{ID: 1, Voters: []int32{1, 2, 3}, MayVote: func(c int32) bool { return may && c == 2 }}, Restored{})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []MsgType{MsgPreVote, MsgVote} {
		n.msgs = nil
		n.Step(Message{Type: typ, From: 2, To: 1, Term: 1})
		if len(n.msgs) != 1 || !n.msgs[0].Reject {
			t.Fatalf("%v while MayVote says no: %v", typ, n.msgs)
		}
	}
	may = true
	n.msgs = nil
	n.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 1})
	if len(n.msgs) != 1 || n.msgs[0].Reject || n.vote != 2 {
		t.Fatalf("vote once MayVote says yes: %v, vote %d", n.msgs, n.vote)
	}
}

// TestLeaderCommit: a follower reports the commit index its leader sent,
// beyond what its own log reaches, for the leader's term only.
func TestLeaderCommit(t *testing.T) {
	n, err := New(Config{ID: 2, Voters: []int32{1, 2, 3}}, Restored{})
	if err != nil {
		t.Fatal(err)
	}
	n.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 40})
	if st := n.Status(); st.LeaderCommit != 40 || st.Commit != 0 {
		t.Fatalf("after a heartbeat with commit 40 to an empty log: %+v", st)
	}
	n.Step(Message{Type: MsgHeartbeat, From: 3, To: 2, Term: 4, Commit: 0})
	if st := n.Status(); st.LeaderCommit != 0 {
		t.Fatalf("the leader of term 4 sent no commit yet: %+v", st)
	}
	// A snapshot tells the commit beyond it.
	n.Step(Message{Type: MsgSnap, From: 3, To: 2, Term: 4, Commit: 70, Snapshot: &Snapshot{Index: 50, Term: 4}})
	if st := n.Status(); st.LeaderCommit != 70 {
		t.Fatalf("after a snapshot at 50 with commit 70: %+v", st)
	}
}
