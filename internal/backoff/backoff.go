// Package backoff is the wait of a listener between failed Accepts: a
// process out of file descriptors (EMFILE) or of memory for sockets must
// not stop listening for good, nor spin, nor fill its log, while the
// condition lasts.
package backoff

import (
	"log/slog"
	"time"
)

// Accept waits before the next Accept after a failed one: 5 ms, doubling
// up to 1 s while they keep failing, as net/http's server waits. The zero
// value is ready to use.
type Accept struct {
	d      time.Duration
	logged time.Time // when a failure was last logged
}

// logEvery bounds how often Failed logs.
const logEvery = 10 * time.Second

// Failed returns how long to wait after a failed Accept, and logs err to
// lg as msg (a warning, with the wait), at most once every 10 s.
func (b *Accept) Failed(lg *slog.Logger, msg string, err error) time.Duration {
	if b.d == 0 {
		b.d = 5 * time.Millisecond
	} else {
		b.d = min(2*b.d, time.Second)
	}
	if now := time.Now(); now.Sub(b.logged) >= logEvery {
		b.logged = now
		lg.Warn(msg, "error", err, "in", b.d)
	}
	return b.d
}

// Reset starts the waits over, after an Accept that succeeded.
func (b *Accept) Reset() { b.d = 0 }
