package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxRequestBytes is the largest request frame accepted (Kafka's
// socket.request.max.bytes).
const DefaultMaxRequestBytes = 100 << 20

// handler serves one API between two versions.
type handler struct {
	min, max int16
	serve    func(b *Broker, req kmsg.Request) (kmsg.Response, error)
}

// handlers is filled by the files named by API key; ApiVersions reports it.
var handlers = map[int16]handler{}

func register(key, min, max int16, serve func(b *Broker, req kmsg.Request) (kmsg.Response, error)) {
	handlers[key] = handler{min: min, max: max, serve: serve}
}

// Server accepts Kafka connections for a Broker.
type Server struct {
	b        *Broker
	maxFrame int32
	log      *slog.Logger
	metrics  *Metrics // may be nil

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewServer returns a server for b; maxRequestBytes <= 0 means the
// default; metrics may be nil.
func NewServer(b *Broker, maxRequestBytes int32, log *slog.Logger, metrics *Metrics) *Server {
	if maxRequestBytes <= 0 {
		maxRequestBytes = DefaultMaxRequestBytes
	}
	return &Server{b: b, maxFrame: maxRequestBytes, log: log, metrics: metrics, conns: map[net.Conn]struct{}{}}
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Close stops accepting, closes every connection and waits for the
// requests in flight to finish.
func (s *Server) Close() error {
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
	s.wg.Wait()
	return nil
}

// serveConn reads requests and answers them in order, one at a time.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	// Idle connections hold only this small reader: request frames are read
	// into buffers of their own size, responses written whole.
	r := bufio.NewReaderSize(c, 4<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > s.maxFrame {
			s.metrics.badRequest("size")
			s.log.Warn("closing connection: bad request size", "remote", c.RemoteAddr(), "size", size, "max", s.maxFrame)
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		resp, err := s.handle(frame)
		if err != nil {
			s.metrics.badRequest("request")
			s.log.Debug("closing connection", "remote", c.RemoteAddr(), "error", err)
			return
		}
		if resp == nil {
			continue // acks=0 produce: no response
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// handle parses one request frame and returns the response frame (size
// prefix included), nil for none, or an error that closes the connection.
func (s *Server) handle(frame []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	h, known := handlers[key]
	req := kmsg.RequestForKey(key)
	if !known || req == nil {
		return nil, fmt.Errorf("unknown API key %d", key)
	}
	if version < h.min || version > h.max {
		if key == kmsg.ApiVersions.Int16() {
			// Kafka answers an unsupported ApiVersions version with v0 and
			// the error, so the client can retry with a version it has.
			resp := apiVersions(kerr.UnsupportedVersion.Code)
			resp.SetVersion(0)
			return frameResponse(corr, false, resp), nil
		}
		return nil, fmt.Errorf("API %d version %d is not supported (%d-%d)", key, version, h.min, h.max)
	}
	req.SetVersion(version)
	body, err := skipRequestHeader(frame[8:], req.IsFlexible())
	if err != nil {
		return nil, err
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("API %d v%d: malformed request: %w", key, version, err)
	}
	start := time.Now()
	resp, err := h.serve(s.b, req)
	s.metrics.observe(key, start)
	if err != nil || resp == nil {
		return nil, err
	}
	resp.SetVersion(version)
	// ApiVersions responses always use header v0.
	flexHeader := resp.IsFlexible() && key != kmsg.ApiVersions.Int16()
	return frameResponse(corr, flexHeader, resp), nil
}

// skipRequestHeader skips the client id (and, for flexible versions, the
// header's tagged fields) and returns the body.
func skipRequestHeader(b []byte, flexible bool) ([]byte, error) {
	if len(b) < 2 {
		return nil, errors.New("truncated request header")
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > 0 {
		if int(n) > len(b) {
			return nil, errors.New("truncated client id")
		}
		b = b[n:]
	}
	if !flexible {
		return b, nil
	}
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
	out := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(out[4:], uint32(corr))
	if flexHeader {
		out = append(out, 0) // no tagged fields
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// serve is a helper for handlers that need the concrete request type.
func serve[Req kmsg.Request](fn func(b *Broker, req Req) (kmsg.Response, error)) func(*Broker, kmsg.Request) (kmsg.Response, error) {
	return func(b *Broker, r kmsg.Request) (kmsg.Response, error) { return fn(b, r.(Req)) }
}
