package cluster

import (
	"testing"

	"github.com/chronik-stream/chronik/internal/testaddr"
)

// freeGossipAddr returns a loopback address for a member's gossip, which
// a member started again binds again (testaddr: below the ephemeral
// range, free for TCP and UDP).
func freeGossipAddr(t testing.TB) string {
	t.Helper()
	return testaddr.Members.Free(t)
}
