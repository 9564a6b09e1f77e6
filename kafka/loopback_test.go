package kafka

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/kafkatest"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// loopback serves a broker in memory with opts on a loopback port, closed
// at the test's end.
type loopback struct {
	t    *testing.T
	b    *Broker
	srv  *Server
	addr string
}

func serveLoopback(t *testing.T, opts ServerOptions) *loopback {
	t.Helper()
	b := memBroker(t, segmenttest.NewMemFS())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, opts, slog.New(slog.DiscardHandler), nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &loopback{t: t, b: b, srv: srv, addr: ln.Addr().String()}
}

// dial opens a connection, closed at the test's end.
func (l *loopback) dial() net.Conn {
	l.t.Helper()
	c, err := net.Dial("tcp", l.addr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c
}

// clientFrame is req's frame, size first, as a client sends it.
func clientFrame(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("loopback-test")).AppendRequest(nil, req, corr)
}

// send writes req's frame to c.
func (l *loopback) send(c net.Conn, req kmsg.Request, corr int32) {
	l.t.Helper()
	if _, err := c.Write(clientFrame(req, corr)); err != nil {
		l.t.Fatal(err)
	}
}

// answer reads one response frame from c, waiting up to within.
func answer(c net.Conn, within time.Duration) error {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := kafkatest.ReadFrame(c)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
