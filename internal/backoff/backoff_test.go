package backoff

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAccept(t *testing.T) {
	var out bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&out, nil))
	var b Accept
	var got []time.Duration
	for range 10 {
		got = append(got, b.Failed(lg, "cannot accept", errors.New("too many open files")))
	}
	if got[0] != 5*time.Millisecond || got[1] != 10*time.Millisecond || got[8] != time.Second || got[9] != time.Second {
		t.Fatalf("waits %v", got)
	}
	if n := strings.Count(out.String(), "level=WARN msg=\"cannot accept\" error=\"too many open files\" in=5ms"); n != 1 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("10 failures logged as:\n%s", out.String())
	}
	b.Reset()
	if d := b.Failed(lg, "cannot accept", errors.New("again")); d != 5*time.Millisecond {
		t.Fatalf("after a reset: %v", d)
	}
	if strings.Contains(out.String(), "again") {
		t.Fatal("a failure within 10 s of the last line logged")
	}
}
