package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/framing"
)

// relay carries requests to the other brokers of a cluster, addressed by
// id (requests forwarded to the controller, transaction markers and
// checks) over connections to their Kafka listeners, one request at a
// time on each. A client's forwarded request frame goes as it came (its
// correlation id and client id included) and the response frame comes
// back as the other node wrote it: forwarding costs one write and one
// read here, and no decoding or encoding beyond the client connection's.
type relay struct {
	mu     sync.Mutex
	idle   map[int32][]net.Conn    // by broker id
	slots  map[int32]chan struct{} // by broker id: a token per request under way
	closed bool
}

// maxIdleRelays bounds the connections kept open to one broker between
// requests; more are opened while more requests go there at once, and
// closed after.
const maxIdleRelays = 4

// maxRelays bounds the requests under way to one broker, each on a
// connection of its own; more wait for one to end.
const maxRelays = 64

// maxRelayedResponse bounds a relayed request's response frame (answers
// to metadata requests, markers and checks are small: CreateTopics's for
// 10,000 topics of the longest names is under 3 MB).
const maxRelayedResponse = 64 << 20

// relayDial bounds opening a connection to another broker, and its
// opening request.
const relayDial = time.Second

// relayAnswerWait bounds a relayed request, from the wait for a
// connection to its answer: longer than the controller waits for a
// change to commit (10 s), so that its answer comes back, a
// REQUEST_TIMED_OUT included, rather than the relay giving up first.
const relayAnswerWait = 30 * time.Second

// relayFrame sends a request frame (without its size prefix) to broker id
// and returns its response frame, size prefix included, and the change
// that answer waits for (cutTrailer). A kept connection that the other end
// closed meanwhile (it restarted) fails before any answer: the request
// goes again, at once, on a new connection.
func (b *Broker) relayFrame(id int32, frame []byte) ([]byte, Uncommitted, error) {
	deadline := time.Now().Add(relayAnswerWait)
	if err := b.relaySlot(id, deadline); err != nil {
		return nil, Uncommitted{}, err
	}
	defer b.relayFree(id)
	for {
		c, kept, err := b.relayConn(id)
		if err != nil {
			return nil, Uncommitted{}, err
		}
		resp, err := exchange(c, frame, deadline)
		var u Uncommitted
		if err == nil {
			resp, u, err = cutTrailer(resp)
		}
		if err == nil {
			b.relayDone(id, c)
			return resp, u, nil
		}
		c.Close()
		if !kept || !errors.Is(err, errNoAnswer) {
			return nil, Uncommitted{}, fmt.Errorf("kafka: request to broker %d: %w", id, err)
		}
		b.dropRelays(id) // kept as long as this one: as likely closed
	}
}

// relayTrailer is the size of what ends each response frame on a relay
// connection, after the response: the Uncommitted change the relaying node
// waits for before it answers (offset and epoch; zeros for none).
const relayTrailer = 12

// appendTrailer ends a response frame, size prefix included, with u.
func appendTrailer(frame []byte, u Uncommitted) []byte {
	frame = binary.BigEndian.AppendUint64(frame, uint64(u.End))
	frame = binary.BigEndian.AppendUint32(frame, uint32(u.Epoch))
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// cutTrailer takes the trailer off a response frame read from a relay
// connection.
func cutTrailer(frame []byte) ([]byte, Uncommitted, error) {
	if len(frame) < 8+relayTrailer {
		return nil, Uncommitted{}, fmt.Errorf("a response frame of %d bytes, too short for its correlation id and the relay's trailer", len(frame))
	}
	t := frame[len(frame)-relayTrailer:]
	u := Uncommitted{End: int64(binary.BigEndian.Uint64(t)), Epoch: int32(binary.BigEndian.Uint32(t[8:]))}
	if u.End < 0 {
		return nil, Uncommitted{}, fmt.Errorf("a relayed response that waits for offset %d", u.End)
	}
	frame = frame[:len(frame)-relayTrailer]
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame, u, nil
}

// relaySlot waits, until deadline, for one of the maxRelays requests that
// may be under way to broker id.
func (b *Broker) relaySlot(id int32, deadline time.Time) error {
	r := &b.relay
	r.mu.Lock()
	if r.slots == nil {
		r.slots = map[int32]chan struct{}{}
	}
	slots := r.slots[id]
	if slots == nil {
		slots = make(chan struct{}, maxRelays)
		r.slots[id] = slots
	}
	r.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("kafka: request to broker %d: %d requests under way to it did not end in time", id, maxRelays)
	case <-b.closing:
		return errors.New("kafka: the broker is stopping")
	}
}

// relayFree ends a request that relaySlot let through.
func (b *Broker) relayFree(id int32) {
	b.relay.mu.Lock()
	slots := b.relay.slots[id]
	b.relay.mu.Unlock()
	<-slots
}

// errNoAnswer: the connection ended before the first byte of an answer.
var errNoAnswer = errors.New("the connection ended before an answer")

// exchange writes one request frame and reads its response frame.
func exchange(c net.Conn, frame []byte, deadline time.Time) ([]byte, error) {
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(frame)))
	out := net.Buffers{size[:], frame}
	if _, err := out.WriteTo(c); err != nil {
		return nil, noAnswer(err)
	}
	return readResponse(c, frame[4:8])
}

// noAnswer marks an error that ended a connection before an answer began.
func noAnswer(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	return err
}

// readResponse reads a response frame, size prefix included, that answers
// the request of correlation id corr.
func readResponse(r io.Reader, corr []byte) ([]byte, error) {
	var size [4]byte
	if n, err := io.ReadFull(r, size[:]); err != nil {
		if n == 0 {
			err = noAnswer(err)
		}
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > maxRelayedResponse {
		return nil, fmt.Errorf("a response frame of %d bytes (4 to %d)", n, maxRelayedResponse)
	}
	body, err := framing.ReadBody(r, int(n))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(body[:4], corr) {
		return nil, fmt.Errorf("a response with correlation id %d to request %d", binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(corr))
	}
	return append(size[:], body...), nil
}

// relayConn returns an idle connection to broker id (kept), or a new one.
func (b *Broker) relayConn(id int32) (c net.Conn, kept bool, err error) {
	r := &b.relay
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, false, errors.New("kafka: the broker is stopping")
	}
	if idle := r.idle[id]; len(idle) > 0 {
		c := idle[len(idle)-1]
		r.idle[id] = idle[:len(idle)-1]
		r.mu.Unlock()
		return c, true, nil
	}
	r.mu.Unlock()
	// Looked up at every connection: a broker that restarted elsewhere
	// registered its new address.
	addr, ok := b.brokerAddr(id)
	if !ok {
		return nil, false, fmt.Errorf("kafka: broker %d is not registered", id)
	}
	if c, err = net.DialTimeout("tcp", addr, relayDial); err != nil {
		return nil, false, fmt.Errorf("kafka: connect to broker %d: %w", id, err)
	}
	// The first request says what the connection is (see reqContext.relay).
	if _, err := exchange(c, relayHello, time.Now().Add(relayDial)); err != nil {
		c.Close()
		return nil, false, fmt.Errorf("kafka: connect to broker %d: %w", id, err)
	}
	return c, false, nil
}

// relayHello opens a relay connection: ApiVersions v0 from relayClientID.
var relayHello = kmsg.NewRequestFormatter(kmsg.FormatterClientID(relayClientID)).AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 0)[4:]

// relayDone keeps a connection that served a request for the next one.
func (b *Broker) relayDone(id int32, c net.Conn) {
	r := &b.relay
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.idle[id]) >= maxIdleRelays {
		c.Close()
		return
	}
	if r.idle == nil {
		r.idle = map[int32][]net.Conn{}
	}
	r.idle[id] = append(r.idle[id], c)
}

// dropRelays closes the idle connections to broker id.
func (b *Broker) dropRelays(id int32) {
	r := &b.relay
	r.mu.Lock()
	idle := r.idle[id]
	delete(r.idle, id)
	r.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// closeRelay closes the idle connections and keeps new ones from opening.
func (b *Broker) closeRelay() {
	r := &b.relay
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, idle := range r.idle {
		for _, c := range idle {
			c.Close()
		}
	}
	r.idle = nil
}

// brokerAddr is a registered broker's Kafka address.
func (b *Broker) brokerAddr(id int32) (string, bool) {
	var addr string
	b.meta.View(func(s *eventlog.State) {
		if br := s.Brokers[id]; br != nil && len(br.Endpoints) > 0 {
			host, port, _ := endpoint(br)
			addr = net.JoinHostPort(host, strconv.Itoa(int(port)))
		}
	})
	return addr, addr != ""
}

// relayClientID names this node in the requests it makes itself.
const relayClientID = "chronik-peer"

// relayRequest sends a request of this node's own to broker id and
// decodes the answer, and the change it waits for: at the highest version
// this build serves, which the other node (the same build) serves too.
func (b *Broker) relayRequest(id int32, req kmsg.Request) (kmsg.Response, Uncommitted, error) {
	req.SetVersion(handlers[req.Key()].max)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID(relayClientID)).AppendRequest(nil, req, 0)
	resp, u, err := b.relayFrame(id, frame[4:])
	if err != nil {
		return nil, Uncommitted{}, err
	}
	r, err := parseResponse(req, resp[4:])
	return r, u, err
}

// parseResponse decodes a response frame body (after its size) to req.
func parseResponse(req kmsg.Request, body []byte) (kmsg.Response, error) {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if len(body) < 4 {
		return nil, fmt.Errorf("kafka: %s response: %d bytes, no correlation id", kmsg.NameForKey(req.Key()), len(body))
	}
	body = body[4:] // the correlation id
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, fmt.Errorf("kafka: %s response: %w", kmsg.NameForKey(req.Key()), err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("kafka: %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}
