package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCloseStale: after a move of the controller, a connection idle since
// is closed; one whose request had begun to arrive reads and answers it;
// one that sent a request after the move stays.
func TestCloseStale(t *testing.T) {
	l := serveLoopback(t, ServerOptions{ConnectionsMaxIdle: -1})
	v := kmsg.NewPtrApiVersionsRequest()
	v.SetVersion(0)
	frame := clientFrame(v, 1)
	within := 5 * time.Second

	idle, begun, active := l.dial(), l.dial(), l.dial()
	if _, err := begun.Write(frame[:2]); err != nil { // half of the size
		t.Fatal(err)
	}
	time.Sleep(staleAfter + 100*time.Millisecond)
	moved := time.Now()
	if _, err := active.Write(frame); err != nil {
		t.Fatal(err)
	}
	if err := answer(active, within); err != nil {
		t.Fatal(err)
	}
	time.Sleep(staleAfter + 100*time.Millisecond)

	l.srv.closeStale(moved)
	if err := answer(idle, within); err == nil || isTimeout(err) {
		t.Fatalf("an idle connection was not closed: %v", err)
	}
	if _, err := begun.Write(frame[2:]); err != nil {
		t.Fatal(err)
	}
	if err := answer(begun, within); err != nil {
		t.Fatalf("a request begun as the wait ended: %v", err)
	}
	if _, err := active.Write(frame); err != nil {
		t.Fatal(err)
	}
	if err := answer(active, within); err != nil {
		t.Fatalf("a connection with a request since the move: %v", err)
	}
}
