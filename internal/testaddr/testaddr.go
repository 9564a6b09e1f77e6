// Package testaddr hands tests loopback addresses for servers that bind
// them later, or bind them again after a restart.
package testaddr

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Range is a range of ports, [Lo, Hi), that one package's tests take
// theirs from. The packages whose tests run at the same time take
// different ranges, so that two of them do not pick the same port between
// its check and its use; all lie below the kernel's ephemeral range
// (32768 up): a port from it, closed and handed over, could meanwhile
// become the local port of any outgoing connection ("address already in
// use"), and a server started again binds its old address.
type Range struct{ Lo, Hi int }

var (
	// Processes is cmd/chronik's range: the addresses of the processes
	// its tests start.
	Processes = Range{20000, 32000}
	// Members is the cluster package's range: its members' gossip
	// addresses.
	Members = Range{10000, 20000}
)

// Free returns an address of r nothing listens on, TCP or UDP (gossip
// binds both), and never hands out one port twice in a test process.
func (r Range) Free(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		port := r.Lo + rand.IntN(r.Hi-r.Lo)
		if handed[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		handed[port] = true
		return addr
	}
	t.Fatalf("no free loopback port between %d and %d", r.Lo, r.Hi)
	return ""
}

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)
