package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// freeGossipAddr returns a loopback address nothing listens on, TCP or UDP
// (memberlist binds both), for a member's gossip. A member started again
// binds the same address, so it is taken below the kernel's ephemeral
// range (32768 up): a port from that range, closed, could meanwhile become
// the local port of any outgoing connection ("address already in use").
// Ports 10000-19999 here, 20000-31999 for cmd/chronik's processes, so that
// the two packages' tests, run at once, do not pick the same one; none is
// handed out twice by one test process.
func freeGossipAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 10000 + rand.IntN(10000)
		if handedPorts[port] {
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
		handedPorts[port] = true
		return addr
	}
	t.Fatal("no free loopback port between 10000 and 20000")
	return ""
}

var (
	portsMu     sync.Mutex
	handedPorts = map[int]bool{}
)
