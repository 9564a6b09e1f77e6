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

	"github.com/chronik-stream/chronik/internal/framing"
)

// StreamRaft is the stream type byte a connection for Raft messages starts
// with on the replication port (which metadata shipping shares with its
// own type).
const StreamRaft byte = 'R'

const (
	// MaxFrameBytes bounds one message on the wire; a larger length prefix
	// closes the connection.
	MaxFrameBytes = 64 << 20
	// peerQueue bounds the messages waiting for one peer: past it, new
	// ones are dropped (Raft retries), so a slow peer costs no memory.
	peerQueue = 256
	// maxBackoff bounds the wait between dials to a peer that is down: a
	// restarted peer must hear from us within a fraction of an election
	// timeout, or its votes are answered too late.
	maxBackoff = 100 * time.Millisecond
)

// TCPTransport sends and receives Raft messages over TCP: one listener,
// connections that start with a stream type byte, then length-prefixed
// frames. Each peer has one outgoing connection, redialled with backoff,
// fed from a bounded queue.
type TCPTransport struct {
	id   int32
	ln   net.Listener
	step func(Message)
	log  *slog.Logger

	mu       sync.Mutex
	peers    map[int32]*peer
	handlers map[byte]func(net.Conn)
	conns    map[net.Conn]struct{}
	closed   bool

	filter  atomic.Pointer[func(Message) bool]
	dropped atomic.Int64
	quit    chan struct{}
	wg      sync.WaitGroup
}

type peer struct {
	mu    sync.Mutex
	addr  string
	queue chan []byte
}

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
		conns: map[net.Conn]struct{}{}, quit: make(chan struct{})}
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
	if len(frame)-4 > MaxFrameBytes {
		// The peer would close the connection on it, and Raft would send
		// it again and again: only a snapshot can be this large.
		t.log.Error("raft: a message too large for the transport is not sent; the peer cannot catch up from this snapshot (the fallback path carries at most this much metadata)",
			"to", m.To, "type", m.Type, "bytes", len(frame)-4, "max", MaxFrameBytes)
		t.dropped.Add(1)
		return
	}
	select {
	case p.queue <- frame:
	default:
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
		backoff = 10 * time.Millisecond
		if !t.track(c) {
			c.Close()
			return
		}
		err = t.writeFrames(c, p)
		t.untrack(c)
		c.Close()
		if errors.Is(err, net.ErrClosed) || t.isClosed() {
			return
		}
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
	w := bufio.NewWriterSize(c, 64<<10)
	if err := w.WriteByte(StreamRaft); err != nil {
		return err
	}
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
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := w.Write(frame); err != nil {
				return err
			}
			// Write what is queued together, then flush.
			for more := true; more; {
				select {
				case f := <-p.queue:
					binary.BigEndian.PutUint32(f, uint32(len(f)-4))
					if _, err := w.Write(f); err != nil {
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
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if !t.isClosed() {
				t.log.Warn("replication listener failed", "error", err)
			}
			return
		}
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

// readMessages reads Raft frames until the connection ends or a frame is
// bad.
func (t *TCPTransport) readMessages(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > MaxFrameBytes {
			t.log.Warn("raft: frame too large, closing", "remote", c.RemoteAddr(), "bytes", n)
			return
		}
		body, err := framing.ReadBody(r, int(n))
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
	t.conns[c] = struct{}{}
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
