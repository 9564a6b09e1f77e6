package raft

import (
	"reflect"
	"testing"
)

var codecSamples = []Message{
	{Type: MsgPreVote, From: 1, To: 2, Term: 5, LogTerm: 4, Index: 99, Force: true},
	{Type: MsgAppResp, From: 3, To: 1, Term: 5, Index: 7, Reject: true, RejectHint: 3, HintTerm: 2},
	{Type: MsgApp, From: 1, To: 3, Term: 5, LogTerm: 5, Index: 7, Commit: 6, Entries: []Entry{{Term: 5, Index: 8, Data: []byte("x")}, {Term: 5, Index: 9}}},
	{Type: MsgSnap, From: 1, To: 2, Term: 9, Snapshot: &Snapshot{Index: 100, Term: 8, Data: []byte("state")}},
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range codecSamples {
		got, err := Decode(Encode(nil, m))
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %s: %+v, %v", m, got, err)
		}
	}
	b := Encode(nil, codecSamples[2])
	for i := range b {
		if _, err := Decode(b[:i]); err == nil {
			t.Errorf("a message cut at %d of %d bytes decoded", i, len(b))
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range codecSamples {
		f.Add(Encode(nil, m))
	}
	f.Add([]byte{1, 5, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(Encode(nil, m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding %+v: %+v, %v", m, again, err)
		}
	})
}
