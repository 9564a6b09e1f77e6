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
