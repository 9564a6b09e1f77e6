package loglimit

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var out bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	now := time.Unix(1000, 0)
	l := New(10 * time.Second)
	l.now = func() time.Time { return now }
	for i := range 5 {
		l.Log(lg, slog.LevelError, "cannot write", "partition", i)
	}
	l.Log(lg, slog.LevelWarn, "another", "partition", 9)
	now = now.Add(10 * time.Second)
	l.Log(lg, slog.LevelError, "cannot write", "partition", 5)
	l.Log(lg, slog.LevelError, "cannot write", "partition", 6)
	want := `level=ERROR msg="cannot write" partition=0
level=WARN msg=another partition=9
level=ERROR msg="cannot write" partition=5 left_out=4
`
	if got := out.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(out.String(), "partition=6") {
		t.Fatal("a line within the interval was written")
	}
}
