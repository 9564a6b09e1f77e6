package raft

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/testaddr"
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
		"long cluster name":   append([]byte{StreamRaft, MaxCluster + 1}, make([]byte, MaxCluster+1)...),
		"oversized frame":     append([]byte{StreamRaft, 0}, binary.BigEndian.AppendUint32(nil, MaxFrameBytes+1)...),
		"garbled message":     append([]byte{StreamRaft, 0}, frame([]byte{9, 9, 9})...),
		"for another node":    append([]byte{StreamRaft, 0}, frame(Encode(nil, Message{Type: MsgHeartbeat, From: 2, To: 7, Term: 3}))...),
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
	c.Write(append([]byte{StreamRaft, 0}, frame(good)...))
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

// TestTransportBoundsQueuedBytes: messages for a peer that cannot be
// reached wait up to maxQueueBytes, however few they are; the others are
// dropped.
func TestTransportBoundsQueuedBytes(t *testing.T) {
	defer func(n int64) { maxQueueBytes = n }(maxQueueBytes)
	maxQueueBytes = 1 << 20
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gone, _ := net.Listen("tcp", "127.0.0.1:0")
	gone.Close() // connections to it are refused
	tr := NewTCPTransport(1, ln, map[int32]string{2: gone.Addr().String()}, func(Message) {}, nil)
	defer tr.Close()
	for range 20 {
		tr.Send(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Entries: []Entry{{Term: 1, Index: 1, Data: make([]byte, 100_000)}}})
	}
	if d := tr.Dropped(); d != 10 {
		t.Fatalf("%d of 20 messages of 100 kB dropped with 1 MiB queued at most, want 10", d)
	}
}

// TestTransportSendsLargeMessagesInParts: a message larger than a frame
// (a snapshot) goes in several and arrives whole; one larger than a
// message may be is not sent (the peer would close the connection on it,
// and Raft send it again), and what follows is delivered.
func TestTransportSendsLargeMessagesInParts(t *testing.T) {
	defer func(p, m int) { framePart, maxMessage = p, m }(framePart, maxMessage)
	framePart, maxMessage = 1<<10, 64<<10
	ln1, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	got := make(chan Message, 4)
	tr1 := NewTCPTransport(1, ln1, map[int32]string{2: ln2.Addr().String()}, func(Message) {}, nil)
	defer tr1.Close()
	tr2 := NewTCPTransport(2, ln2, nil, func(m Message) { got <- m }, nil)
	defer tr2.Close()
	data := make([]byte, 10_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	tr1.Send(Message{Type: MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &Snapshot{Index: 9, Term: 1, Data: data}})
	tr1.Send(Message{Type: MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &Snapshot{Index: 10, Term: 1, Data: make([]byte, maxMessage)}})
	if tr1.Dropped() != 1 {
		t.Fatalf("%d messages dropped, want the one over the bound", tr1.Dropped())
	}
	tr1.Send(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	for _, want := range []MsgType{MsgSnap, MsgHeartbeat} {
		select {
		case m := <-got:
			if m.Type != want {
				t.Fatalf("got %v, want %v", m.Type, want)
			}
			if m.Type == MsgSnap && (m.Snapshot == nil || m.Snapshot.Index != 9 || !bytes.Equal(m.Snapshot.Data, data)) {
				t.Fatal("the snapshot sent in parts arrived changed")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %v arrived", want)
		}
	}
}

// FuzzReadMessage: whatever arrives, a message is read whole within its
// bounds or refused; nothing panics.
func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0x80, 0, 0, 1, 'a', 0, 0, 0, 1, 'b'})
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 1, 'b'})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			msg, err := readMessage(r)
			if err != nil {
				return
			}
			if len(msg) > maxMessage {
				t.Fatalf("a message of %d bytes", len(msg))
			}
		}
	})
}

// TestTransportRefusesAnotherCluster: transports of two clusters do not
// take each other's messages; one of no cluster yet takes any; a node that
// takes its cluster's name makes its connections again under it.
func TestTransportRefusesAnotherCluster(t *testing.T) {
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	ln1, ln2 := listen(), listen()
	got := make(chan Message, 100)
	tr1 := NewTCPTransport(1, ln1, map[int32]string{2: ln2.Addr().String()}, func(Message) {}, nil)
	defer tr1.Close()
	tr2 := NewTCPTransport(2, ln2, nil, func(m Message) { got <- m }, nil)
	defer tr2.Close()
	sendUntil := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			tr1.Send(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
			select {
			case <-got:
				if !want {
					t.Fatal("a message crossed from one cluster to another")
				}
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		if want {
			t.Fatal("no message arrived")
		}
	}
	tr1.SetCluster("a")
	sendUntil(true) // node 2 is of no cluster yet
	tr2.SetCluster("b")
	time.Sleep(50 * time.Millisecond)
	for len(got) > 0 {
		<-got
	}
	sendUntil(false)
	tr1.SetCluster("b")
	sendUntil(true)
	if err := tr1.SetCluster(string(make([]byte, MaxCluster+1))); err == nil {
		t.Fatal("a cluster name too long was taken")
	}
}

// TestTransportBacksOffAPeerThatCloses: a peer that closes each
// connection at once (one of another cluster does) is dialled again after
// the backoff, not as fast as the network allows.
func TestTransportBacksOffAPeerThatCloses(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var dials atomic.Int32
	go func() {
		for {
			c, err := peer.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTCPTransport(1, ln, map[int32]string{2: peer.Addr().String()}, func(Message) {}, nil)
	defer tr.Close()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		tr.Send(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	}
	// 10 ms doubling to 100 ms: some 13 dials in a second.
	if n := dials.Load(); n > 25 {
		t.Fatalf("%d dials in a second to a peer that closes at once", n)
	}
}

// TestTransportListensAgainAfterAcceptErrors: failed Accepts (EMFILE) do
// not end the listener: a node that stopped listening would hear from no
// controller again.
func TestTransportListensAgainAfterAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &testaddr.FailingListener{Listener: ln}
	fl.Fails.Store(4)
	got := make(chan Message, 1)
	tr := NewTCPTransport(1, fl, map[int32]string{}, func(m Message) { got <- m }, nil)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := Encode(nil, Message{Type: MsgHeartbeat, From: 2, To: 1, Term: 3})
	c.Write(append([]byte{StreamRaft, 0}, append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)...))
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no message delivered after 4 failed accepts")
	}
	closed := make(chan struct{})
	go func() { tr.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}
