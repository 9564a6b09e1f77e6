package raft

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// TestTransportRefusesBadInput: an unknown stream type, an oversized frame,
// a garbled message or one for another node close the connection; the
// transport keeps serving.
func TestTransportRefusesBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Message, 10)
	tr := NewTCPTransport(1, ln, map[int32]string{1: ln.Addr().String()}, func(m Message) { got <- m }, nil)
	defer tr.Close()
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	good := Encode(nil, Message{Type: MsgHeartbeat, From: 2, To: 1, Term: 3})
	for name, input := range map[string][]byte{
		"unknown stream type": {'X', 0, 0, 0, 1},
		"oversized frame":     append([]byte{StreamRaft}, binary.BigEndian.AppendUint32(nil, MaxFrameBytes+1)...),
		"garbled message":     append([]byte{StreamRaft}, frame([]byte{9, 9, 9})...),
		"for another node":    append([]byte{StreamRaft}, frame(Encode(nil, Message{Type: MsgHeartbeat, From: 2, To: 7, Term: 3}))...),
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(input)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err == nil {
			t.Errorf("%s: the connection stayed open", name)
		}
		c.Close()
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append([]byte{StreamRaft}, frame(good)...))
	select {
	case m := <-got:
		if m.Type != MsgHeartbeat || m.From != 2 || m.Term != 3 {
			t.Fatalf("received %s", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a good message after bad connections was not delivered")
	}
	if len(got) != 0 {
		t.Fatalf("bad input delivered %d messages", len(got))
	}
}

// TestTransportDropsForASlowPeer: messages for a peer that does not read
// wait in a bounded queue and are then dropped.
func TestTransportDropsForASlowPeer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead, _ := net.Listen("tcp", "127.0.0.1:0") // accepts, never reads
	defer dead.Close()
	tr := NewTCPTransport(1, ln, map[int32]string{2: dead.Addr().String()}, func(Message) {}, nil)
	defer tr.Close()
	big := make([]byte, 64<<10)
	for range 1000 {
		tr.Send(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Entries: []Entry{{Term: 1, Index: 1, Data: big}}})
	}
	if tr.Dropped() == 0 {
		t.Fatal("64 MiB for a peer that never reads were all queued")
	}
}

// TestTransportDropsWhatThePeerWouldRefuse: a message larger than a frame
// may be (a snapshot) is not sent, where the peer would close the
// connection on it and Raft send it again; what follows is delivered.
func TestTransportDropsWhatThePeerWouldRefuse(t *testing.T) {
	ln1, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	got := make(chan Message, 4)
	tr1 := NewTCPTransport(1, ln1, map[int32]string{2: ln2.Addr().String()}, func(Message) {}, nil)
	defer tr1.Close()
	tr2 := NewTCPTransport(2, ln2, nil, func(m Message) { got <- m }, nil)
	defer tr2.Close()
	tr1.Send(Message{Type: MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &Snapshot{Index: 9, Term: 1, Data: make([]byte, MaxFrameBytes)}})
	if tr1.Dropped() != 1 {
		t.Fatalf("%d messages dropped, want the oversize one", tr1.Dropped())
	}
	tr1.Send(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	select {
	case m := <-got:
		if m.Type != MsgHeartbeat {
			t.Fatalf("got %v first", m.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message after the oversize one did not arrive")
	}
}
