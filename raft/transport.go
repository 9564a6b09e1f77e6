package raft

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/backoff"
	"github.com/chronik-stream/chronik/internal/framing"
)

// StreamRaft is the stream type byte a connection for Raft messages starts
// with on the replication port (which metadata shipping shares with its
// own type).
const StreamRaft byte = 'R'

const (
	// MaxFrameBytes bounds one frame on the wire; a larger length prefix
	// closes the connection. A larger message goes in several frames.
	MaxFrameBytes = 64 << 20
	// MaxMessageBytes bounds a message (a snapshot, in practice), as the
	// storage bounds a record of it.
	MaxMessageBytes = 256 << 20
	// continued marks a frame's length prefix: more frames of the same
	// message follow.
	continued = 1 << 31
	// peerQueue bounds the messages waiting for one peer (and
	// maxQueueBytes their bytes): past it, new ones are dropped (Raft
	// retries), so a slow peer costs bounded memory.
	peerQueue = 256
	// maxBackoff bounds the wait between dials to a peer that is down: a
	// restarted peer must hear from us within a fraction of an election
	// timeout, or its votes are answered too late.
	maxBackoff = 100 * time.Millisecond
)

// TCPTransport sends and receives Raft messages over TCP: one listener,
// connections that start with a stream type byte, then the sender's
// cluster (SetCluster: a length byte and up to MaxCluster bytes), then
// length-prefixed frames. Each peer has one outgoing connection,
// redialled with backoff, fed from a bounded queue.
type TCPTransport struct {
	id   int32
	ln   net.Listener
	step func(Message)
	log  *slog.Logger

	mu       sync.Mutex
	peers    map[int32]*peer
	handlers map[byte]func(net.Conn)
	conns    map[net.Conn]bool // open connections; true: of Raft messages (both ways)
	cluster  string
	refused  string // the last other cluster refused, logged once
	closed   bool

	filter  atomic.Pointer[func(Message) bool]
	dropped atomic.Int64
	quit    chan struct{}
	wg      sync.WaitGroup
}

type peer struct {
	mu     sync.Mutex
	addr   string
	queue  chan []byte
	queued atomic.Int64 // bytes in queue
}

// maxQueueBytes bounds the bytes waiting for one peer: a large message
// (a snapshot, sent again while the peer is unreachable) and the usual
// traffic beside it. A variable for tests.
var maxQueueBytes int64 = MaxMessageBytes + 64<<20

func (p *peer) setAddr(a string) {
	p.mu.Lock()
	p.addr = a
	p.mu.Unlock()
}

func (p *peer) getAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// NewTCPTransport serves ln and sends to peers (id → address); received
// messages for this node go to step.
func NewTCPTransport(id int32, ln net.Listener, peers map[int32]string, step func(Message), log *slog.Logger) *TCPTransport {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &TCPTransport{id: id, ln: ln, step: step, log: log, peers: map[int32]*peer{}, handlers: map[byte]func(net.Conn){},
		conns: map[net.Conn]bool{}, quit: make(chan struct{})}
	t.handlers[StreamRaft] = t.readMessages
	for pid, addr := range peers {
		t.SetPeer(pid, addr)
	}
	t.wg.Go(t.acceptLoop)
	return t
}

// SetPeer adds a peer, or changes its address, as discovery finds it.
func (t *TCPTransport) SetPeer(id int32, addr string) {
	if id == t.id {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p := t.peers[id]; p != nil {
		p.setAddr(addr)
		return
	}
	p := &peer{queue: make(chan []byte, peerQueue)}
	p.setAddr(addr)
	t.peers[id] = p
	t.wg.Go(func() { t.sendLoop(p) })
}

// MaxCluster bounds the length of a cluster's name (SetCluster).
const MaxCluster = 64

// SetCluster names the cluster this node is of: connections from and to a
// transport of another cluster are refused, so that two clusters' Raft
// messages never mix. An empty name (a node of no cluster yet) talks to
// any. The Raft connections open now are closed, to be made again under
// the new name.
func (t *TCPTransport) SetCluster(name string) error {
	if len(name) > MaxCluster {
		return fmt.Errorf("raft: a cluster name of %d bytes: at most %d", len(name), MaxCluster)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cluster == name {
		return nil
	}
	t.cluster = name
	for c, raft := range t.conns {
		if raft {
			c.Close()
		}
	}
	return nil
}

// sameCluster reports whether a peer of cluster other may talk to this
// node, logging a refusal once for each other cluster.
func (t *TCPTransport) sameCluster(other string, remote net.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cluster == "" || other == "" || other == t.cluster {
		return true
	}
	if t.refused != other {
		t.refused = other
		t.log.Warn("raft: refusing a node of another cluster", "remote", remote, "its_cluster", other, "this_cluster", t.cluster)
	}
	return false
}

// carriesRaft marks a tracked connection as one of Raft messages, which
// SetCluster closes.
func (t *TCPTransport) carriesRaft(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; ok {
		t.conns[c] = true
	}
}

// Handle serves connections of another stream type on the same listener.
func (t *TCPTransport) Handle(kind byte, h func(net.Conn)) {
	t.mu.Lock()
	t.handlers[kind] = h
	t.mu.Unlock()
}

// SetFilter installs a fault hook: messages it refuses are dropped, sent or
// received. Nil removes it.
func (t *TCPTransport) SetFilter(f func(Message) bool) {
	if f == nil {
		t.filter.Store(nil)
	} else {
		t.filter.Store(&f)
	}
}

func (t *TCPTransport) allowed(m Message) bool {
	f := t.filter.Load()
	return f == nil || (*f)(m)
}

// Dropped counts messages dropped because a peer's queue was full or they
// were too large to send.
func (t *TCPTransport) Dropped() int64 { return t.dropped.Load() }

// Send queues m for its peer, or drops it when the peer is behind or not
// known yet.
func (t *TCPTransport) Send(m Message) {
	t.mu.Lock()
	p := t.peers[m.To]
	t.mu.Unlock()
	if p == nil || !t.allowed(m) {
		return
	}
	frame := Encode(make([]byte, 4, 64), m)
	if len(frame)-4 > maxMessage {
		// The peer would close the connection on it, and Raft would send
		// it again and again: only a snapshot can be this large.
		t.log.Error("raft: a message too large for the transport is not sent; the peer cannot catch up from this snapshot (the fallback path carries at most this much metadata)",
			"to", m.To, "type", m.Type, "bytes", len(frame)-4, "max", maxMessage)
		t.dropped.Add(1)
		return
	}
	if p.queued.Add(int64(len(frame))) > maxQueueBytes {
		p.queued.Add(-int64(len(frame)))
		t.dropped.Add(1)
		return
	}
	select {
	case p.queue <- frame:
	default:
		p.queued.Add(-int64(len(frame)))
		t.dropped.Add(1)
	}
}

// sendLoop keeps a connection to one peer and writes its queue to it.
func (t *TCPTransport) sendLoop(p *peer) {
	backoff := 10 * time.Millisecond
	for {
		c, err := net.DialTimeout("tcp", p.getAddr(), time.Second)
		if err != nil {
			select {
			case <-t.quit:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if !t.track(c) {
			c.Close()
			return
		}
		began := time.Now()
		t.writeFrames(c, p)
		t.untrack(c)
		c.Close()
		if t.isClosed() {
			return
		}
		// The peer went, or SetCluster closed the connection: dial again,
		// at once, unless the connection ended as it began (a peer that
		// refuses this node's cluster closes it at once): then after the
		// backoff, not in a loop as fast as the network.
		if time.Since(began) > time.Second {
			backoff = 10 * time.Millisecond
			continue
		}
		select {
		case <-t.quit:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (t *TCPTransport) writeFrames(c net.Conn, p *peer) error {
	// The peer never writes on this connection: a read that returns means
	// it is gone (it closed, or crashed and restarted). Notice at once, so
	// that the next message goes on a new connection instead of into a
	// dead one.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		c.Read(b[:])
		close(gone)
	}()
	t.carriesRaft(c)
	t.mu.Lock()
	cluster := t.cluster
	t.mu.Unlock()
	w := bufio.NewWriterSize(c, 64<<10)
	w.WriteByte(StreamRaft)
	w.WriteByte(byte(len(cluster)))
	w.WriteString(cluster)
	if err := w.Flush(); err != nil {
		return err
	}
	for {
		select {
		case <-t.quit:
			return net.ErrClosed
		case <-gone:
			return io.EOF
		case frame := <-p.queue:
			p.queued.Add(-int64(len(frame)))
			// 5 s, and a second more for each 16 MiB of a large message.
			c.SetWriteDeadline(time.Now().Add(5*time.Second + time.Duration(len(frame)>>24)*time.Second))
			if err := writeMessage(w, frame); err != nil {
				return err
			}
			// Write what is queued together, then flush.
			for more := true; more; {
				select {
				case f := <-p.queue:
					p.queued.Add(-int64(len(f)))
					if err := writeMessage(w, f); err != nil {
						return err
					}
				default:
					more = false
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func (t *TCPTransport) acceptLoop() {
	var wait backoff.Accept
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.isClosed() {
				return
			}
			// Out of file descriptors, say: a node that stopped listening
			// here would hear from no controller again. Listen again once
			// it can.
			time.Sleep(wait.Failed(t.log, "replication listener: cannot accept a connection; trying again", err))
			continue
		}
		wait.Reset()
		if !t.track(c) {
			c.Close()
			return
		}
		t.wg.Go(func() {
			defer func() {
				t.untrack(c)
				c.Close()
			}()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var kind [1]byte
			if _, err := io.ReadFull(c, kind[:]); err != nil {
				return
			}
			c.SetReadDeadline(time.Time{})
			t.mu.Lock()
			h := t.handlers[kind[0]]
			t.mu.Unlock()
			if h == nil {
				t.log.Warn("replication port: unknown stream type, closing", "remote", c.RemoteAddr(), "type", kind[0])
				return
			}
			h(c)
		})
	}
}

// framePart is the most of a message one frame carries, and maxMessage
// the largest message (MaxFrameBytes and MaxMessageBytes; tests make them
// smaller).
var framePart, maxMessage = MaxFrameBytes, MaxMessageBytes

// writeMessage writes an encoded message, after the 4 bytes its frame
// keeps for the length, in as many frames as it needs.
func writeMessage(w *bufio.Writer, frame []byte) error {
	if len(frame)-4 <= framePart {
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		_, err := w.Write(frame)
		return err
	}
	for rest := frame[4:]; len(rest) > 0; {
		part := rest[:min(len(rest), framePart)]
		rest = rest[len(part):]
		n := uint32(len(part))
		if len(rest) > 0 {
			n |= continued
		}
		if err := binary.Write(w, binary.BigEndian, n); err != nil {
			return err
		}
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}

// errBadFrame: a frame the transport does not take.
var errBadFrame = errors.New("raft: bad frame")

// readMessage reads the frames of one message and returns its bytes:
// each frame at most MaxFrameBytes, the message at most MaxMessageBytes,
// the memory held growing with the bytes that arrive.
func readMessage(r io.Reader) ([]byte, error) {
	var msg []byte
	for {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(size[:])
		more := n&continued != 0
		n &^= continued
		if n > MaxFrameBytes || len(msg)+int(n) > maxMessage || more && n == 0 {
			return nil, fmt.Errorf("%w: %d bytes after %d of the message", errBadFrame, n, len(msg))
		}
		body, err := framing.ReadBody(r, int(n))
		if err != nil {
			return nil, err
		}
		if msg == nil && !more {
			return body, nil // the message in one frame, as most are
		}
		msg = append(msg, body...)
		if !more {
			return msg, nil
		}
	}
}

// readMessages reads Raft messages until the connection ends or one is
// bad.
func (t *TCPTransport) readMessages(c net.Conn) {
	t.carriesRaft(c)
	r := bufio.NewReaderSize(c, 64<<10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := r.ReadByte()
	if err != nil || n > MaxCluster {
		return
	}
	var cluster [MaxCluster]byte
	if _, err := io.ReadFull(r, cluster[:n]); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	if !t.sameCluster(string(cluster[:n]), c.RemoteAddr()) {
		return
	}
	for {
		body, err := readMessage(r)
		if errors.Is(err, errBadFrame) {
			t.log.Warn("raft: bad frame, closing", "remote", c.RemoteAddr(), "error", err)
			return
		}
		if err != nil {
			return
		}
		m, err := Decode(body)
		if err != nil {
			t.log.Warn("raft: bad message, closing", "remote", c.RemoteAddr(), "error", err)
			return
		}
		if m.To != t.id {
			t.log.Warn("raft: message for another node, closing", "remote", c.RemoteAddr(), "to", m.To, "self", t.id)
			return
		}
		if t.allowed(m) {
			t.step(m)
		}
	}
}

func (t *TCPTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = false
	return true
}

func (t *TCPTransport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *TCPTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close stops listening and sending, closes every connection and waits.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("raft: transport already closed")
	}
	t.closed = true
	close(t.quit)
	t.ln.Close()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}
