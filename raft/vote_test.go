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
