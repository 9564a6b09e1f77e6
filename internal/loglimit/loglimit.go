// Package loglimit bounds how often a kind of log line is written: a disk
// that is full fails every partition's write the same way, and thousands
// of partitions must not make thousands of lines.
package loglimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter writes a line of each message at most once every Every; the
// lines it leaves out are counted, and the next line of that message says
// how many ("left_out"). The zero value is not usable: use New.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	last    time.Time
	skipped int
}

// New returns a Limiter that writes each message at most once every every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, kinds: map[string]*kind{}}
}

// Log writes msg with args at level to lg, unless a line of msg was
// written less than Every ago.
func (l *Limiter) Log(lg *slog.Logger, level slog.Level, msg string, args ...any) {
	now := l.now()
	l.mu.Lock()
	k := l.kinds[msg]
	if k == nil {
		k = &kind{}
		l.kinds[msg] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < l.every {
		k.skipped++
		l.mu.Unlock()
		return
	}
	skipped := k.skipped
	k.last, k.skipped = now, 0
	l.mu.Unlock()
	if skipped > 0 {
		args = append(args, "left_out", skipped)
	}
	lg.Log(context.Background(), level, msg, args...)
}
