package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
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
					var size [4]byte
					if _, err := io.ReadFull(c, size[:]); err != nil {
						return
					}
					frame := make([]byte, binary.BigEndian.Uint32(size[:]))
					if _, err := io.ReadFull(c, frame); err != nil {
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

// respond frames a response body after the request's correlation id.
func respond(req []byte, body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	out = append(out, req[4:8]...)
	return append(out, body...)
}

// TestRelayPassesFramesThrough: a forwarded request frame reaches the
// other broker byte for byte, its response frame comes back byte for
// byte, and one connection carries the requests that follow each other.
func TestRelayPassesFramesThrough(t *testing.T) {
	var got atomic.Pointer[[]byte]
	stub := newPeerStub(t, false, func(frame []byte) []byte {
		got.Store(&frame)
		return respond(frame, []byte("the answer"))
	})
	b := relayBroker(t, stub)
	for i := range 3 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t" + strconv.Itoa(i), NumPartitions: 1, ReplicationFactor: 1}}
		frame := requestFrame(req, 5)
		resp, err := b.relayFrame(2, frame)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(*got.Load(), frame) {
			t.Fatalf("the other broker got %q, not the client's frame %q", *got.Load(), frame)
		}
		if want := respond(frame, []byte("the answer")); !bytes.Equal(resp, want) {
			t.Fatalf("relayed %q, want %q", resp, want)
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
		if _, err := b.relayFrame(2, frame); err != nil {
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
			_, err := b.relayFrame(2, frame)
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
	resp, err := b.relayRequest(2, kmsg.NewPtrInitProducerIDRequest())
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
				if resp, err := b.relayFrame(2, frame); err == nil {
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
	if _, err := b.relayFrame(2, frame); err != nil {
		t.Fatal(err)
	}
	b.closeRelay()
	if _, err := b.relayFrame(2, frame); err == nil {
		t.Fatal("relayed after the broker stopped")
	}
	if _, err := b.relayFrame(3, frame); err == nil {
		t.Fatal("relayed to an unknown broker")
	}
}

// FuzzReadResponse: whatever the other broker sends, reading its answer
// returns an error or exactly the frame it announced, never panics, and
// allocates no more than the bound.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 6, 0, 0, 0, 9, 1, 2})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 8})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 9})
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
func (elsewhere) Controller() (int32, bool)               { return 2, false }
func (elsewhere) NotController(err error) bool            { return errors.Is(err, errNotHere) }
func (elsewhere) Quorum() Quorum                          { return Quorum{Leader: 2, Voters: []int32{2}} }
func (elsewhere) Up(int32) bool                           { return true }
func (elsewhere) Settle(time.Duration)                    {}

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, ServerOptions{}, slog.New(slog.DiscardHandler), NewMetrics(reg))
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
