package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/kafkatest"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// peerStub is another broker's Kafka listener that answers a relay's
// opening request, and each request after it with what answer makes of it,
// and counts its connections.
type peerStub struct {
	ln     net.Listener
	conns  atomic.Int32
	hellos atomic.Int32              // relayHello requests answered
	once   bool                      // close each connection after its first request
	closed atomic.Int32              // connections closed so
	answer func(frame []byte) []byte // the response frame, size included; nil closes
}

func newPeerStub(t *testing.T, once bool, answer func(frame []byte) []byte) *peerStub {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peerStub{ln: ln, answer: answer, once: once}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			go func() {
				defer c.Close()
				for {
					frame, err := kafkatest.ReadFrame(c)
					if err != nil {
						return
					}
					var out []byte
					if bytes.Equal(frame, relayHello) {
						p.hellos.Add(1)
						out = respond(frame, kmsg.NewPtrApiVersionsResponse().AppendTo(nil))
					} else {
						out = p.answer(frame)
					}
					if out == nil {
						return
					}
					if _, err := c.Write(out); err != nil {
						return
					}
					if p.once && !bytes.Equal(frame, relayHello) {
						c.Close()
						p.closed.Add(1)
						return
					}
				}
			}()
		}
	}()
	return p
}

// relayBroker is a broker on an in-memory file system, changed by set if
// given, that knows broker 2 at the stub's address.
func relayBroker(t *testing.T, stub *peerStub, set ...func(*Config)) *Broker {
	t.Helper()
	b := memBroker(t, segmenttest.NewMemFS(), set...)
	host, port, _ := net.SplitHostPort(stub.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 2, Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: host, Port: int32(p)}}}); err != nil {
		t.Fatal(err)
	}
	return b
}

// dialServer serves b's Kafka API on a loopback port, with metrics m if
// not nil, and returns a connection to it; both close with the test.
func dialServer(t *testing.T, b *Broker, m *Metrics) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, ServerOptions{}, slog.New(slog.DiscardHandler), m)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// respond frames a response body after the request's correlation id, as
// a peer's relay connection does: with a trailer that waits for nothing.
func respond(req []byte, body []byte) []byte {
	return appendTrailer(clientResponse(req, body), Uncommitted{})
}

// clientResponse frames a response body as a client gets it.
func clientResponse(req []byte, body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	out = append(out, req[4:8]...)
	return append(out, body...)
}

// TestRelayPassesFramesThrough: a forwarded request frame reaches the
// other broker byte for byte, its response frame comes back byte for
// byte without the relay's trailer, which says what change to wait for,
// and one connection carries the requests that follow each other.
func TestRelayPassesFramesThrough(t *testing.T) {
	var got atomic.Pointer[[]byte]
	wait := Uncommitted{End: 42, Epoch: 3}
	stub := newPeerStub(t, false, func(frame []byte) []byte {
		got.Store(&frame)
		return appendTrailer(clientResponse(frame, []byte("the answer")), wait)
	})
	b := relayBroker(t, stub)
	for i := range 3 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t" + strconv.Itoa(i), NumPartitions: 1, ReplicationFactor: 1}}
		frame := requestFrame(req, 5)
		resp, u, err := b.relayFrame(2, frame)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(*got.Load(), frame) {
			t.Fatalf("the other broker got %q, not the client's frame %q", *got.Load(), frame)
		}
		if want := clientResponse(frame, []byte("the answer")); !bytes.Equal(resp, want) || u != wait {
			t.Fatalf("relayed %q waiting for %+v, want %q waiting for %+v", resp, u, want, wait)
		}
	}
	if n, h := stub.conns.Load(), stub.hellos.Load(); n != 1 || h != 1 {
		t.Fatalf("%d connections opened by %d ApiVersions for three requests in turn, want 1", n, h)
	}
}

// TestRelayReconnectsWhenAKeptConnectionEnded: a kept connection the other
// broker closed (it restarted) is noticed when the request finds no
// answer; the request goes again on a new connection, and succeeds.
func TestRelayReconnectsWhenAKeptConnectionEnded(t *testing.T) {
	var served atomic.Int32
	stub := newPeerStub(t, true, func(frame []byte) []byte {
		served.Add(1)
		return respond(frame, []byte("ok"))
	})
	b := relayBroker(t, stub)
	frame := requestFrame(kmsg.NewPtrMetadataRequest(), 9)
	for i := range 3 {
		if _, _, err := b.relayFrame(2, frame); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// The kept connection is closed at the other end before the next.
		for deadline := time.Now().Add(5 * time.Second); stub.closed.Load() != int32(i+1); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the stub did not close the connection")
			}
		}
	}
	if n, s := stub.conns.Load(), served.Load(); n != 3 || s != 3 {
		t.Fatalf("%d connections served %d requests, want 3 and 3", n, s)
	}
}

// TestRelayBoundsRequestsUnderWay: at most maxRelays requests are under
// way to one broker, each on a connection of its own; the others wait for
// one to end, and all are answered.
func TestRelayBoundsRequestsUnderWay(t *testing.T) {
	release := make(chan struct{})
	var under, peak atomic.Int32
	stub := newPeerStub(t, false, func(frame []byte) []byte {
		n := under.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		under.Add(-1)
		return respond(frame, []byte("ok"))
	})
	b := relayBroker(t, stub)
	frame := requestFrame(kmsg.NewPtrMetadataRequest(), 9)
	const requests = maxRelays + 20
	errs := make(chan error, requests)
	for range requests {
		go func() {
			_, _, err := b.relayFrame(2, frame)
			errs <- err
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); under.Load() < maxRelays; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests under way, want %d", under.Load(), maxRelays)
		}
	}
	time.Sleep(50 * time.Millisecond) // none more starts
	close(release)
	for range requests {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != maxRelays {
		t.Fatalf("%d requests under way at most, want %d", p, maxRelays)
	}
}

// TestRelayDecodesAnswers: a request of the node's own goes at the highest
// version it serves, and a flexible response (tagged header) is decoded.
func TestRelayDecodesAnswers(t *testing.T) {
	stub := newPeerStub(t, false, func(frame []byte) []byte {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 4242, 7
		body := []byte{0} // the response header's tagged fields
		return respond(frame, resp.AppendTo(body))
	})
	b := relayBroker(t, stub)
	resp, _, err := b.relayRequest(2, kmsg.NewPtrInitProducerIDRequest())
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if r.ProducerID != 4242 || r.ProducerEpoch != 7 || r.GetVersion() != handlers[kmsg.InitProducerID.Int16()].max {
		t.Fatalf("decoded %+v at v%d", r, r.GetVersion())
	}
}

// TestRelayRefusesBadAnswers: a response to another request, one larger
// than the bound (never allocated), and a connection closed before the
// answer are errors, and the connection is not used again.
func TestRelayRefusesBadAnswers(t *testing.T) {
	for name, answer := range map[string]func([]byte) []byte{
		"other correlation id": func(frame []byte) []byte {
			out := respond(frame, []byte("x"))
			out[7]++
			return out
		},
		"oversize": func([]byte) []byte { return binary.BigEndian.AppendUint32(nil, maxRelayedResponse+1) },
		"negative": func([]byte) []byte { return []byte{0xff, 0xff, 0xff, 0xff} },
		"no body":  func([]byte) []byte { return binary.BigEndian.AppendUint32(nil, 2) },
		"closed":   func([]byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			stub := newPeerStub(t, false, answer)
			b := relayBroker(t, stub)
			frame := requestFrame(kmsg.NewPtrMetadataRequest(), 9)
			for range 2 {
				if resp, _, err := b.relayFrame(2, frame); err == nil {
					t.Fatalf("relayed %q", resp)
				}
			}
			if n, h := stub.conns.Load(), stub.hellos.Load(); n != 2 || h != 2 {
				t.Fatalf("%d connections opened by %d ApiVersions for two failed requests, want 2", n, h)
			}
		})
	}
}

// TestRelayStops: once the broker stops, nothing is relayed.
func TestRelayStops(t *testing.T) {
	stub := newPeerStub(t, false, func(frame []byte) []byte { return respond(frame, nil) })
	b := relayBroker(t, stub)
	frame := requestFrame(kmsg.NewPtrMetadataRequest(), 9)
	if _, _, err := b.relayFrame(2, frame); err != nil {
		t.Fatal(err)
	}
	b.closeRelay()
	if _, _, err := b.relayFrame(2, frame); err == nil {
		t.Fatal("relayed after the broker stopped")
	}
	if _, _, err := b.relayFrame(3, frame); err == nil {
		t.Fatal("relayed to an unknown broker")
	}
}

// FuzzReadResponse: whatever the other broker sends, reading its answer
// returns an error or exactly the frame it announced, never panics, and
// allocates no more than the bound; cutting the relay's trailer off it
// returns an error or the frame before the trailer, framed again.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 6, 0, 0, 0, 9, 1, 2})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 8})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 9})
	f.Add(appendTrailer([]byte{0, 0, 0, 6, 0, 0, 0, 9, 1, 2}, Uncommitted{End: 7, Epoch: 2}))
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	corr := []byte{0, 0, 0, 9}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := readResponse(bytes.NewReader(data), corr)
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(data))
		if len(resp) != 4+n || !bytes.Equal(resp, data[:4+n]) || !bytes.Equal(resp[4:8], corr) {
			t.Fatalf("read %x from %x", resp, data)
		}
		orig := bytes.Clone(resp)
		cut, u, err := cutTrailer(resp)
		if err != nil {
			return
		}
		if u.End < 0 || len(cut) != len(orig)-relayTrailer || int(binary.BigEndian.Uint32(cut)) != len(cut)-4 ||
			!bytes.Equal(cut[4:], orig[4:len(cut)]) || !bytes.Equal(appendTrailer(cut, u), orig) {
			t.Fatalf("cut %x (%+v) from %x", cut, u, orig)
		}
	})
}

// FuzzParseResponse: a response body that does not decode is an error,
// never a panic.
func FuzzParseResponse(f *testing.F) {
	f.Add(int16(kmsg.CreateTopics), []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0})
	f.Add(int16(kmsg.InitProducerID), []byte{0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, key int16, body []byte) {
		h, ok := handlers[key]
		req := kmsg.RequestForKey(key)
		if !ok || req == nil {
			return
		}
		req.SetVersion(h.max)
		parseResponse(req, body)
	})
}

// elsewhere is a cluster whose controller is broker 2, never this node.
type elsewhere struct{}

func (elsewhere) Append(...eventlog.Event) (int64, error) { return 0, errNotHere }
func (elsewhere) AppendRelayed(...eventlog.Event) (Uncommitted, error) {
	return Uncommitted{}, errNotHere
}
func (elsewhere) WaitCommit(Uncommitted) bool  { return true }
func (elsewhere) Controller() (int32, bool)    { return 2, false }
func (elsewhere) NotController(err error) bool { return errors.Is(err, errNotHere) }
func (elsewhere) Quorum() Quorum               { return Quorum{Leader: 2, Voters: []int32{2}} }
func (elsewhere) Up(int32) bool                { return true }
func (elsewhere) Settle(time.Duration)         {}

// uncommittedElsewhere is elsewhere whose controller answers changes
// before they commit: WaitCommit records what it is asked to wait for and
// reports commits.
type uncommittedElsewhere struct {
	elsewhere
	commits bool
	asked   chan Uncommitted
}

func (c uncommittedElsewhere) WaitCommit(u Uncommitted) bool {
	c.asked <- u
	return c.commits
}

// TestRelayedAnswerWaitsForItsCommit: a change the controller answered
// before it committed is answered to the client as the controller did
// once it commits here, and with NOT_CONTROLLER, which clients retry, if
// it does not.
func TestRelayedAnswerWaitsForItsCommit(t *testing.T) {
	wait := Uncommitted{End: 9, Epoch: 4}
	stub := newPeerStub(t, false, func(frame []byte) []byte {
		resp := kmsg.NewPtrCreateTopicsResponse()
		resp.Version = int16(binary.BigEndian.Uint16(frame[2:]))
		resp.Topics = []kmsg.CreateTopicsResponseTopic{{Topic: "answered", NumPartitions: 1, ReplicationFactor: 1}}
		return appendTrailer(clientResponse(frame, append([]byte{0}, resp.AppendTo(nil)...)), wait)
	})
	for _, commits := range []bool{true, false} {
		cl := uncommittedElsewhere{commits: commits, asked: make(chan Uncommitted, 1)}
		b := relayBroker(t, stub, func(c *Config) { c.Cluster = cl })
		c := dialServer(t, b, nil)
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "answered", NumPartitions: 1, ReplicationFactor: -1}}
		frame, err := exchange(c, requestFrame(req, 7), time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := parseResponse(req, frame[4:])
		if err != nil {
			t.Fatal(err)
		}
		got := resp.(*kmsg.CreateTopicsResponse).Topics
		want := int16(0)
		if !commits {
			want = kerr.NotController.Code
		}
		if len(got) != 1 || got[0].ErrorCode != want {
			t.Fatalf("commits=%v: answered %+v, want error code %d", commits, got, want)
		}
		select {
		case u := <-cl.asked:
			if u != wait {
				t.Fatalf("waited for %+v, want %+v", u, wait)
			}
		default:
			t.Fatal("answered without waiting for the commit")
		}
	}
}

// earlyController is a cluster of which this node is the controller,
// which answers changes relayed to it before they commit, in epoch 3.
type earlyController struct{ failingCluster }

func (c *earlyController) AppendRelayed(events ...eventlog.Event) (Uncommitted, error) {
	off, err := c.meta.Append(events...)
	return Uncommitted{End: off + int64(len(events)), Epoch: 3}, err
}

// TestRelayConnectionsSayWhatToWaitFor: on a connection that opened as a
// relay, every response ends with the relay's trailer; a topic created
// there says where its change ends, a request that made no change (or one
// answered once committed) waits for nothing.
func TestRelayConnectionsSayWhatToWaitFor(t *testing.T) {
	cl := &earlyController{}
	b := memBroker(t, segmenttest.NewMemFS(), func(c *Config) { c.Cluster = cl })
	cl.meta = b.meta
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 1}); err != nil {
		t.Fatal(err)
	}
	c := dialServer(t, b, nil)
	// ask sends req and returns the error code of the first topic answered
	// and what the answer waits for.
	ask := func(req kmsg.Request, version int16) (int16, Uncommitted) {
		t.Helper()
		frame, err := exchange(c, requestFrame(req, version), time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		frame, u, err := cutTrailer(frame)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := parseResponse(req, frame[4:])
		if err != nil {
			t.Fatal(err)
		}
		switch r := resp.(type) {
		case *kmsg.CreateTopicsResponse:
			return r.Topics[0].ErrorCode, u
		case *kmsg.DeleteTopicsResponse:
			return r.Topics[0].ErrorCode, u
		}
		return 0, u
	}
	if _, err := exchange(c, relayHello, time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "early", NumPartitions: 2, ReplicationFactor: -1}}
	code, u := ask(create, 7)
	if end := b.meta.Offset(); code != 0 || u != (Uncommitted{End: end, Epoch: 3}) {
		t.Fatalf("the create: error %d, waits for %+v; want 0, the end of the log %d in epoch 3", code, u, end)
	}
	if code, u := ask(create, 7); code != kerr.TopicAlreadyExists.Code || u != (Uncommitted{}) {
		t.Fatalf("a create that made nothing: error %d, waits for %+v", code, u)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"early"}
	if code, u := ask(del, 5); code != 0 || u != (Uncommitted{}) {
		t.Fatalf("a delete, answered once committed: error %d, waits for %+v", code, u)
	}
}

// TestRelayedRequestsAreNotForwardedAgain: a node that takes another for
// the controller while that one takes it for the controller (here: a node
// that finds its own address under the controller's id) answers a
// forwarded request NOT_CONTROLLER at once, instead of passing it back and
// forth until the forwarding gives up.
func TestRelayedRequestsAreNotForwardedAgain(t *testing.T) {
	b, addr, stop := newTestBroker(t, t.TempDir(), func(c *Config) { c.Cluster = elsewhere{} })
	t.Cleanup(stop)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 2, Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: host, Port: int32(p)}}}); err != nil {
		t.Fatal(err)
	}
	// A client of before KIP-1242 (ApiVersions v4): from v5 on it names the
	// node it expects, and this one, which is not broker 2, would refuse it.
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.ApiVersions.Int16(), 4)
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(v)))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "looped", NumPartitions: 1, ReplicationFactor: -1}}
	start := time.Now()
	resp, err := cl.Broker(2).Request(ctx, req) // no retries: the answer as sent
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) != 1 || r.Topics[0].ErrorCode != kerr.NotController.Code {
		t.Fatalf("answered %+v, want NOT_CONTROLLER", r.Topics)
	}
	if d := time.Since(start); d > forwardWait/2 {
		t.Fatalf("answered after %v", d)
	}
}

// TestForwardedRequestsAreCounted: a request passed on to the controller
// and answered there is counted as relayed, by API.
func TestForwardedRequestsAreCounted(t *testing.T) {
	stub := newPeerStub(t, false, func(frame []byte) []byte {
		resp := kmsg.NewPtrCreateTopicsResponse()
		resp.Version = int16(binary.BigEndian.Uint16(frame[2:]))
		return respond(frame, append([]byte{0}, resp.AppendTo(nil)...)) // a flexible header's tags
	})
	b := relayBroker(t, stub, func(c *Config) { c.Cluster = elsewhere{} })
	reg := prometheus.NewRegistry()
	c := dialServer(t, b, NewMetrics(reg))
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "counted", NumPartitions: 1, ReplicationFactor: -1}}
	if _, err := exchange(c, requestFrame(req, 7), time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var relayed float64
	for _, f := range families {
		if f.GetName() != "chronik_kafka_forwarded_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["api"] == "CreateTopics" && labels["outcome"] == "relayed" {
				relayed = m.GetCounter().GetValue()
			}
		}
	}
	if relayed != 1 {
		t.Fatalf("%v CreateTopics counted as relayed, want 1", relayed)
	}
}

// TestOnlyARelayHelloOpensARelay: a connection is another node's relay,
// whose answers end with a trailer, only when its first request is the
// relay's hello; a client that merely shares the relay's client id, or
// sends that hello later, gets Kafka's answers as they are.
func TestOnlyARelayHelloOpensARelay(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS(), func(c *Config) { c.Cluster = &elsewhere{} })
	answer := func(frames ...[]byte) []byte {
		t.Helper()
		c := dialServer(t, b, nil)
		var last []byte
		for _, f := range frames {
			var err error
			if last, err = exchange(c, f, time.Now().Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		return last
	}
	plain := answer(requestFrame(kmsg.NewPtrApiVersionsRequest(), 0)) // client id "cli"
	if got := answer(relayHello); len(got) != len(plain)+relayTrailer {
		t.Fatalf("the relay's hello answered in %d bytes, a client's in %d: want a %d-byte trailer", len(got), len(plain), relayTrailer)
	}
	if got := answer(requestFrame(kmsg.NewPtrApiVersionsRequest(), 0), relayHello); len(got) != len(plain) {
		t.Fatalf("the relay's hello as a second request answered in %d bytes, want %d", len(got), len(plain))
	}
	v3 := kmsg.NewRequestFormatter(kmsg.FormatterClientID(relayClientID)).AppendRequest(nil, &kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "app", ClientSoftwareVersion: "1"}, 0)[4:]
	want := answer(requestFrame(&kmsg.ApiVersionsRequest{ClientSoftwareName: "app", ClientSoftwareVersion: "1"}, 3))
	if got := answer(v3); len(got) != len(want) {
		t.Fatalf("ApiVersions v3 from client id %s answered in %d bytes, want %d", relayClientID, len(got), len(want))
	}
}
