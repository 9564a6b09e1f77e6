package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"

	"github.com/chronik-stream/chronik/internal/backoff"
)

// DefaultMaxRequestBytes is the largest request frame accepted (Kafka's
// socket.request.max.bytes).
const DefaultMaxRequestBytes = 100 << 20

// DefaultMaxQueuedRequestBytes bounds the request frames held at once over
// all connections (Kafka's queued.max.request.bytes, which is unbounded
// by default): read, or being read, and not yet served.
const DefaultMaxQueuedRequestBytes = 512 << 20

// ServerOptions bound what clients may make a Server hold.
type ServerOptions struct {
	// MaxRequestBytes is the largest request frame accepted; a larger one
	// closes the connection. 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int32
	// MaxQueuedRequestBytes bounds the request frames held at once over
	// all connections: a connection whose next frame does not fit waits
	// (its client is held back by TCP) until served requests make room.
	// 0 means DefaultMaxQueuedRequestBytes; never below MaxRequestBytes.
	MaxQueuedRequestBytes int64
	// ConnectionsMaxIdle closes a connection that sent no request for this
	// long and waits for no answer (Kafka's connections.max.idle.ms):
	// clients open a new one when they need it. 0 means
	// DefaultConnectionsMaxIdle; negative, never.
	ConnectionsMaxIdle time.Duration
}

// DefaultConnectionsMaxIdle is Kafka's connections.max.idle.ms.
const DefaultConnectionsMaxIdle = 10 * time.Minute

// maxPipelined is how many requests of one connection may be in flight:
// read and started, their responses not yet written.
const maxPipelined = 32

// reply is a handler's answer: the response now, or a function that waits
// for it (a produce waiting for its sync, a long-poll fetch, a join waiting
// for the group). A nil response is no response (acks=0).
type reply struct {
	resp kmsg.Response
	wait func() (kmsg.Response, error)
	err  error
	// relayed, if set, answers first: with a response frame made elsewhere
	// (a request forwarded to the controller), size prefix included; nil
	// when it could not be, and the fields above answer instead.
	relayed func() []byte
	// written, if set, runs once the response is written or given up
	// (after wait, if wait ran).
	written func()
}

// reqContext is what a handler may know of a request beyond its body.
type reqContext struct {
	clientID string
	host     string // the client's address, without the port
	// relay: the connection is another broker's relay (it said so in its
	// first request), whose forwarded requests are served here, never
	// forwarded again: two nodes that each take the other for the
	// controller, for a moment, answer NOT_CONTROLLER instead of passing
	// a request back and forth.
	relay bool
	// begun: the connection's first request was read (only that one may
	// say it opens a relay connection).
	begun bool
	// relayed, on a relay connection, is set to the change a request made
	// here and answered before it committed; its response carries it to
	// the relaying node, which waits for its commit (appendMeta).
	relayed *Uncommitted
}

// handler serves one API between two versions. serve runs in the
// connection's order; what it leaves in reply.wait runs while the
// connection goes on with the next requests.
type handler struct {
	min, max int16
	serve    func(b *Broker, rc *reqContext, req kmsg.Request) reply
}

// handlers is filled by the files named by API key; ApiVersions reports it.
var handlers = map[int16]handler{}

func register(key, min, max int16, serve func(b *Broker, rc *reqContext, req kmsg.Request) reply) {
	handlers[key] = handler{min: min, max: max, serve: serve}
}

// serve is a helper for handlers that answer at once and need the concrete
// request type.
func serve[Req kmsg.Request](fn func(b *Broker, req Req) (kmsg.Response, error)) func(*Broker, *reqContext, kmsg.Request) reply {
	return func(b *Broker, _ *reqContext, r kmsg.Request) reply {
		resp, err := fn(b, r.(Req))
		return reply{resp: resp, err: err}
	}
}

// serveWith is serve for handlers that need the request's context.
func serveWith[Req kmsg.Request](fn func(b *Broker, rc *reqContext, req Req) (kmsg.Response, error)) func(*Broker, *reqContext, kmsg.Request) reply {
	return func(b *Broker, rc *reqContext, r kmsg.Request) reply {
		resp, err := fn(b, rc, r.(Req))
		return reply{resp: resp, err: err}
	}
}

// serveLater is a helper for handlers whose answer may wait: fn does the
// part that must keep the connection's order and returns the rest.
func serveLater[Req kmsg.Request](fn func(b *Broker, rc *reqContext, req Req) func() (kmsg.Response, error)) func(*Broker, *reqContext, kmsg.Request) reply {
	return func(b *Broker, rc *reqContext, r kmsg.Request) reply {
		return reply{wait: fn(b, rc, r.(Req))}
	}
}

// Server accepts Kafka connections for a Broker.
type Server struct {
	b        *Broker
	maxFrame int32
	maxIdle  time.Duration // ServerOptions.ConnectionsMaxIdle; negative: never
	log      *slog.Logger
	metrics  *Metrics // may be nil
	// queued holds a request frame's bytes from before it is allocated
	// until it is served: many connections announcing large frames cannot
	// make the server allocate more than this.
	queued      *semaphore.Weighted
	queuedBytes atomic.Int64    // held now, for the metrics
	queuedWaits atomic.Int64    // frames that waited for room
	closed      context.Context // done once Close begins
	close       context.CancelFunc

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]*conn
	wg    sync.WaitGroup
}

// NewServer returns a server for b; metrics may be nil.
func NewServer(b *Broker, opts ServerOptions, log *slog.Logger, metrics *Metrics) *Server {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.MaxQueuedRequestBytes <= 0 {
		opts.MaxQueuedRequestBytes = DefaultMaxQueuedRequestBytes
	}
	if opts.ConnectionsMaxIdle == 0 {
		opts.ConnectionsMaxIdle = DefaultConnectionsMaxIdle
	}
	// One request of the largest size must fit.
	queued := max(opts.MaxQueuedRequestBytes, int64(opts.MaxRequestBytes))
	s := &Server{b: b, maxFrame: opts.MaxRequestBytes, maxIdle: opts.ConnectionsMaxIdle, log: log, metrics: metrics, conns: map[net.Conn]*conn{},
		queued: semaphore.NewWeighted(queued)}
	s.closed, s.close = context.WithCancel(context.Background())
	return s
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	if s.b.cfg.Cluster != nil && s.closed.Err() == nil {
		s.wg.Add(1)
		go s.watchController()
	}
	s.mu.Unlock()
	var wait backoff.Accept
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.closed.Err() != nil {
				return nil
			}
			// Out of file descriptors or socket memory, say: the node
			// goes on serving its connections and listens again once
			// they allow it (Kafka's acceptor does the same).
			d := wait.Failed(s.log, "cannot accept a connection; trying again", err)
			select {
			case <-time.After(d):
			case <-s.closed.Done():
				return nil
			}
			continue
		}
		wait.Reset()
		cn := &conn{s: s, nc: c, lastRequest: time.Now()}
		cn.cond.L = &cn.mu
		s.mu.Lock()
		s.conns[c] = cn
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(cn)
	}
}

// Close stops accepting, closes every connection and waits for the
// requests in flight to finish.
func (s *Server) Close() error {
	s.close() // connections waiting to read a frame stop
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		// Stop reading new requests; the one in flight is answered.
		if cr, ok := c.(interface{ CloseRead() error }); ok {
			cr.CloseRead()
		} else {
			c.Close()
		}
	}
	s.mu.Unlock()
	// Long polls and joins waiting for their group are answered now, not
	// after their timeouts.
	s.b.stopWaits()
	s.wg.Wait()
	return nil
}

// hold takes n bytes of the queued-request bound, waiting for room; false
// when the server closes first.
func (s *Server) hold(n int64) bool {
	if !s.queued.TryAcquire(n) {
		s.queuedWaits.Add(1)
		if s.queued.Acquire(s.closed, n) != nil {
			return false
		}
	}
	s.queuedBytes.Add(n)
	return true
}

// unhold gives n bytes of the queued-request bound back.
func (s *Server) unhold(n int64) {
	s.queuedBytes.Add(-n)
	s.queued.Release(n)
}

// parseRequestHeader reads the client id and skips, for flexible
// versions, the header's tagged fields; it returns the id and the body.
func parseRequestHeader(b []byte, flexible bool) (string, []byte, error) {
	clientID, b, err := readClientID(b)
	if err != nil || !flexible {
		return clientID, b, err
	}
	b, err = skipTags(b)
	return clientID, b, err
}

func readClientID(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, errors.New("truncated request header")
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n <= 0 {
		return "", b, nil
	}
	if int(n) > len(b) {
		return "", nil, errors.New("truncated client id")
	}
	return string(b[:n]), b[n:], nil
}

func skipTags(b []byte) ([]byte, error) {
	tags, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad tagged fields in request header")
	}
	b = b[k:]
	for range tags {
		if _, k = binary.Uvarint(b); k <= 0 {
			return nil, errors.New("bad tag in request header")
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, errors.New("bad tag size in request header")
		}
		b = b[k+int(size):]
	}
	return b, nil
}

func frameResponse(corr int32, flexHeader bool, resp kmsg.Response) []byte {
	out := getFrame(8 + sizeHint(resp))[:8]
	binary.BigEndian.PutUint32(out[4:], uint32(corr))
	if flexHeader {
		out = append(out, 0) // no tagged fields
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// sizeHint is about how many bytes resp encodes to, so that the frame is
// allocated once: a fetch response of 64 MiB grown by appending was copied
// about twice over and kept the garbage collector busy.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 256
	}
	n := 64
	for i := range f.Topics {
		t := &f.Topics[i]
		n += 64 + len(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += 64 + len(p.RecordBatches) + 16*len(p.AbortedTransactions)
		}
	}
	return n
}
