package kafka

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/internal/testaddr"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestServeOutlivesAcceptErrors: failed Accepts (EMFILE) do not end the
// server: it listens again and serves, and still stops when closed.
func TestServeOutlivesAcceptErrors(t *testing.T) {
	b := memBroker(t, segmenttest.NewMemFS())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &testaddr.FailingListener{Listener: ln}
	fl.Fails.Store(5)
	srv := NewServer(b, ServerOptions{}, slog.New(slog.DiscardHandler), nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctx); err != nil {
		t.Fatalf("metadata after 5 failed accepts: %v", err)
	}
	if fl.Fails.Load() >= 0 {
		t.Fatal("the failed accepts were not tried")
	}
	srv.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}
