package backoff

import (
	"testing"
	"time"
)

func TestAccept(t *testing.T) {
	var b Accept
	var got []time.Duration
	for range 10 {
		got = append(got, b.Failed())
	}
	if got[0] != 5*time.Millisecond || got[1] != 10*time.Millisecond || got[8] != time.Second || got[9] != time.Second {
		t.Fatalf("waits %v", got)
	}
	b.Reset()
	if d := b.Failed(); d != 5*time.Millisecond {
		t.Fatalf("after a reset: %v", d)
	}
}
