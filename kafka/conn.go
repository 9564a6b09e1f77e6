package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Requests are read and started in order;
// their responses are written in the same order. A response that is ready
// when nothing is queued ahead of it is written by the reading goroutine;
// otherwise a writer goroutine, started on demand and gone when the queue
// is empty, waits for each in turn. So pipelined requests run
// concurrently where it is safe (a produce's sync, a fetch's long poll, a
// join's wait for the group) while an idle connection holds no goroutine
// but its reader. A request relayed to the controller is answered by the
// reader too, which waits for the controller's answer (as Kafka serves a
// connection's requests one at a time): a goroutine started and woken for
// each cost about 30 µs of a relayed DescribeQuorum's 160 here.
type conn struct {
	s  *Server
	nc net.Conn

	mu      sync.Mutex
	cond    sync.Cond
	queue   []pendingReply
	writing bool // a writer goroutine runs
	failed  bool // a write failed or a response could not be made: close
	// waiting: the reader waits for the next request; lastRequest: when
	// the one before came (or the connection, before the first); relay:
	// another node relays through it. nudged: closeStale ended the wait
	// (controller_moved.go).
	waiting, relay, nudged bool
	lastRequest            time.Time
}

// pendingReply is a started request waiting for its turn to be answered.
type pendingReply struct {
	reply
	key, version int16
	corr         int32
	start        time.Time
	// request is the request's frame, given back to the pool and to the
	// server's count of queued bytes once the response is written: set for
	// produce requests only (others are counted until they are started).
	request []byte
	// trailer, on a relay connection, ends the response frame (see
	// relayTrailer).
	trailer *Uncommitted
}

// serveConn reads requests until the connection ends or a request is
// malformed, then waits for the responses in flight and closes.
func (s *Server) serveConn(c *conn) {
	nc := c.nc
	defer func() {
		c.mu.Lock()
		for c.writing {
			c.cond.Wait()
		}
		c.mu.Unlock()
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	rc := &reqContext{}
	if host, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		rc.host = host
	}
	// Idle connections hold only this small reader: request frames are read
	// into buffers of their own size, responses written whole.
	r := bufio.NewReaderSize(nc, 4<<10)
	var sizeBuf [4]byte
	for {
		c.mu.Lock()
		c.waiting = true
		c.idleDeadline()
		c.mu.Unlock()
		n, err := io.ReadFull(r, sizeBuf[:])
		c.mu.Lock()
		c.waiting = false
		if err == nil || n > 0 {
			c.lastRequest = time.Now()
		}
		nudged := c.nudged
		c.nudged = false
		c.mu.Unlock()
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			switch {
			case timeout && n > 0 && nudged:
				// The request began as the wait was ended: read it.
				c.idleDeadline()
				if _, err := io.ReadFull(r, sizeBuf[n:]); err != nil {
					return
				}
			case timeout && n == 0 && nudged:
				s.log.Debug("closing an idle connection: the controller moved", "remote", nc.RemoteAddr())
				return
			case timeout && n == 0 && c.busy():
				continue // an answer is awaited (a long-poll): not idle
			case timeout && n == 0:
				s.log.Debug("closing an idle connection", "remote", nc.RemoteAddr(), "idle", s.maxIdle)
				return
			default:
				return
			}
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > s.maxFrame {
			s.metrics.badRequest("size")
			s.log.Warn("closing connection: bad request size", "remote", nc.RemoteAddr(), "size", size, "max", s.maxFrame)
			return
		}
		// The frame's bytes are counted before they are allocated, and
		// until the request is served (a produce's until it is answered).
		if !s.hold(int64(size)) {
			return // closing
		}
		frame := getFrame(int(size))
		c.idleDeadline() // a frame that stops coming for as long ends too
		if _, err := io.ReadFull(r, frame); err != nil {
			s.unhold(int64(size))
			return
		}
		p, err := s.handle(frame, rc)
		if rc.relay && !c.relay {
			c.mu.Lock()
			c.relay = true
			c.mu.Unlock()
		}
		if p.key == kmsg.Produce.Int16() && err == nil {
			p.request = frame
		} else {
			s.unhold(int64(size))
		}
		if err != nil {
			s.metrics.badRequest("request")
			s.log.Debug("closing connection", "remote", nc.RemoteAddr(), "error", err)
			return
		}
		if !c.push(p) {
			return
		}
	}
}

// idleDeadline bounds the wait for what the client sends next
// (ServerOptions.ConnectionsMaxIdle), or clears the bound.
func (c *conn) idleDeadline() {
	var d time.Time
	if c.s.maxIdle > 0 {
		d = time.Now().Add(c.s.maxIdle)
	}
	c.nc.SetReadDeadline(d)
}

// busy reports whether an answer is being waited for or written.
func (c *conn) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing || len(c.queue) > 0
}

// push queues a started request's answer, writing it at once when it is
// ready (or relayed) and first in line. It blocks while maxPipelined are
// in flight and reports false once the connection has failed.
func (c *conn) push(p pendingReply) bool {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		c.s.drop(p)
		return false
	}
	if !c.writing && (p.wait == nil || p.relayed != nil) {
		c.mu.Unlock()
		if !c.write(p) {
			c.mu.Lock()
			c.failed = true
			c.mu.Unlock()
			return false
		}
		return true
	}
	c.queue = append(c.queue, p)
	if !c.writing {
		c.writing = true
		go c.writer()
	}
	for len(c.queue) >= maxPipelined && !c.failed {
		c.cond.Wait()
	}
	ok := !c.failed
	c.mu.Unlock()
	return ok
}

// writer answers the queued requests in order until the queue is empty.
func (c *conn) writer() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.failed {
			dropped := c.queue
			c.queue = nil
			c.writing = false
			c.cond.Broadcast()
			c.mu.Unlock()
			for _, p := range dropped {
				c.s.drop(p)
			}
			return
		}
		p := c.queue[0]
		c.mu.Unlock()
		ok := c.write(p)
		c.mu.Lock()
		c.queue = c.queue[1:]
		if !ok {
			c.failed = true
			// Unblock the reader; it sees failed and stops.
			c.nc.Close()
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// write waits for a response if it has to, and writes it.
func (c *conn) write(p pendingReply) bool {
	frame, err := p.frame()
	if p.written != nil {
		defer p.written()
	}
	// The request is served: nothing refers to its frame any more.
	c.s.unqueue(p)
	putFrame(p.request)
	c.s.metrics.observe(p.key, p.start)
	if err != nil {
		c.s.log.Debug("closing connection", "remote", c.nc.RemoteAddr(), "error", err)
		return false
	}
	if frame == nil {
		return true // acks=0 produce: no response
	}
	_, err = c.nc.Write(frame)
	putFrame(frame) // written: nothing refers to it
	return err == nil
}

// unqueue counts a request as served. Only the caller that writes its
// response gives its frame back to the pool: a request that will not be
// answered may still be running.
func (s *Server) unqueue(p pendingReply) {
	if p.request != nil {
		s.unhold(int64(len(p.request)))
	}
}

// drop gives up a request that will not be answered.
func (s *Server) drop(p pendingReply) {
	s.unqueue(p)
	if p.written != nil {
		p.written()
	}
}

// frame waits for the response if it has to and returns its frame, size
// prefix included; nil for no response.
func (p *pendingReply) frame() ([]byte, error) {
	if p.relayed != nil {
		if frame := p.relayed(); frame != nil {
			return frame, nil
		}
	}
	resp, err := p.resp, p.err
	if p.wait != nil {
		resp, err = p.wait()
	}
	if err != nil || resp == nil {
		return nil, err
	}
	resp.SetVersion(p.version)
	// ApiVersions responses always use header v0.
	flexHeader := resp.IsFlexible() && p.key != kmsg.ApiVersions.Int16()
	frame := frameResponse(p.corr, flexHeader, resp)
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		releaseFetch(f) // its records are copied into the frame
	}
	if p.trailer != nil {
		frame = appendTrailer(frame, *p.trailer)
	}
	return frame, nil
}

// handle parses one request frame and starts serving it. An error closes
// the connection.
func (s *Server) handle(frame []byte, rc *reqContext) (pendingReply, error) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	p := pendingReply{key: key, version: version, corr: int32(binary.BigEndian.Uint32(frame[4:])), start: time.Now()}
	first := !rc.begun
	rc.begun = true
	if rc.relay {
		p.trailer = new(Uncommitted)
	}
	h, known := handlers[key]
	req := kmsg.RequestForKey(key)
	if !known || req == nil {
		return p, fmt.Errorf("unknown API key %d", key)
	}
	if version < h.min || version > h.max {
		if key == kmsg.ApiVersions.Int16() {
			// Kafka answers an unsupported ApiVersions version with v0 and
			// the error, so the client can retry with a version it has.
			p.resp, p.version = apiVersions(kerr.UnsupportedVersion.Code), 0
			return p, nil
		}
		return p, fmt.Errorf("API %d version %d is not supported (%d-%d)", key, version, h.min, h.max)
	}
	req.SetVersion(version)
	clientID, body, err := parseRequestHeader(frame[8:], req.IsFlexible())
	if err != nil {
		return p, err
	}
	if err := req.ReadFrom(body); err != nil {
		return p, fmt.Errorf("API %d v%d: malformed request: %w", key, version, err)
	}
	rc.clientID = clientID
	// Another node of the cluster opens its relay connection with
	// ApiVersions v0 from relayClientID (relayHello); a client that only
	// shares that name, later or at another version, is not taken for one.
	if first && key == kmsg.ApiVersions.Int16() && version == 0 && clientID == relayClientID && s.b.cfg.Cluster != nil {
		rc.relay = true
		p.trailer = new(Uncommitted)
	}
	if ip, ok := req.(*kmsg.InitProducerIDRequest); ok && transactional(ip) {
		// Served by the transaction coordinator, not the controller.
	} else if c := s.b.cfg.Cluster; c != nil && forwarded[key] && !rc.relay {
		if _, self := c.Controller(); !self {
			// Passed on to the controller; if it cannot be reached, served
			// here, which answers NOT_CONTROLLER (clients look for it).
			p.reply = reply{relayed: func() []byte {
				resp, err := s.b.forwardFrame(frame)
				if err != nil {
					s.log.Debug("cannot forward to the controller", "api", key, "error", err)
				}
				s.metrics.forward(key, err == nil)
				return resp
			}, wait: func() (kmsg.Response, error) {
				r := h.serve(s.b, &reqContext{clientID: clientID, host: rc.host}, req)
				if r.wait != nil {
					return r.wait()
				}
				return r.resp, r.err
			}}
			return p, nil
		}
	}
	if p.trailer != nil {
		// A context of the request's own: what its change leaves to wait for.
		r := *rc
		r.relayed = p.trailer
		rc = &r
	}
	p.reply = h.serve(s.b, rc, req)
	return p, nil
}
