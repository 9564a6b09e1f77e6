package kafka

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestCloseStale: after a move of the controller, a connection idle since
// is closed; one whose request had begun to arrive reads and answers it;
// one that sent a request after the move stays.
func TestCloseStale(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, ServerOptions{ConnectionsMaxIdle: -1}, slog.New(slog.DiscardHandler), nil)
	go srv.Serve(ln)
	defer srv.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	v := kmsg.NewPtrApiVersionsRequest()
	v.SetVersion(0)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("stale-test")).AppendRequest(nil, v, 1)
	answer := func(c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(size[:])))
		return err
	}

	idle, begun, active := dial(), dial(), dial()
	if _, err := begun.Write(frame[:2]); err != nil { // half of the size
		t.Fatal(err)
	}
	time.Sleep(staleAfter + 100*time.Millisecond)
	moved := time.Now()
	if _, err := active.Write(frame); err != nil {
		t.Fatal(err)
	}
	if err := answer(active); err != nil {
		t.Fatal(err)
	}
	time.Sleep(staleAfter + 100*time.Millisecond)

	srv.closeStale(moved)
	if err := answer(idle); err == nil || isTimeout(err) {
		t.Fatalf("an idle connection was not closed: %v", err)
	}
	if _, err := begun.Write(frame[2:]); err != nil {
		t.Fatal(err)
	}
	if err := answer(begun); err != nil {
		t.Fatalf("a request begun as the wait ended: %v", err)
	}
	if _, err := active.Write(frame); err != nil {
		t.Fatal(err)
	}
	if err := answer(active); err != nil {
		t.Fatalf("a connection with a request since the move: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
