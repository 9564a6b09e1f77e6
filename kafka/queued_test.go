package kafka

import (
	"encoding/binary"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestQueuedRequestBytesAreBounded: many connections announcing large
// frames make the server allocate no more than its queued-bytes bound;
// other requests wait for room, and are served once the frames' senders
// go away.
func TestQueuedRequestBytesAreBounded(t *testing.T) {
	b, _ := brokerForTest(t, t.TempDir())
	const frame, queued = 4 << 20, 8 << 20
	srv := NewServer(b, ServerOptions{MaxRequestBytes: frame, MaxQueuedRequestBytes: queued}, slog.New(slog.DiscardHandler), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// 50 clients each announce a frame of almost 4 MiB and send 100 bytes
	// of it: 200 MiB if the server allocated every announced frame.
	var stalled []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		head := binary.BigEndian.AppendUint32(nil, frame-1)
		if _, err := c.Write(append(head, make([]byte, 100)...)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	for deadline := time.Now().Add(5 * time.Second); srv.queued.TryAcquire(1); time.Sleep(5 * time.Millisecond) {
		srv.queued.Release(1)
		if time.Now().After(deadline) {
			t.Fatal("the announced frames never filled the queued-bytes bound")
		}
	}
	time.Sleep(200 * time.Millisecond) // the other 48 wait for room
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 40<<20 {
		t.Fatalf("50 announced frames of 4 MiB made the server allocate %d MiB, bound %d MiB", got>>20, queued>>20)
	}
	if held, waits := srv.queuedBytes.Load(), srv.queuedWaits.Load(); held > queued || waits == 0 {
		t.Fatalf("the metrics say %d bytes held (bound %d) and %d waits", held, queued, waits)
	}

	// A request now waits for room...
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// ApiVersions v0: size, key 18, version 0, correlation id 7, no client id.
	if _, err := c.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var head [8]byte
	if _, err := c.Read(head[:]); err == nil {
		t.Fatal("a request was served beyond the queued-bytes bound")
	}
	// ...and is served once the stalled senders are gone.
	for _, s := range stalled {
		s.Close()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(head[:]); err != nil {
		t.Fatalf("no answer once there was room: %v", err)
	}
	if corr := binary.BigEndian.Uint32(head[4:]); corr != 7 {
		t.Fatalf("answer with correlation id %d, want 7", corr)
	}
	// Every frame's bytes come back.
	for deadline := time.Now().Add(5 * time.Second); srv.queuedBytes.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still held once every request was served or dropped", srv.queuedBytes.Load())
		}
	}
}
