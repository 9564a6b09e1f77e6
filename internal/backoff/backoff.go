// Package backoff is the wait of a listener between failed Accepts: a
// process out of file descriptors (EMFILE) or of memory for sockets must
// not stop listening for good, nor spin while the condition lasts.
package backoff

import "time"

// Accept waits before the next Accept after a failed one: 5 ms, doubling
// up to 1 s while they keep failing, as net/http's server waits. The zero
// value is ready to use.
type Accept struct {
	d time.Duration
}

// Failed returns how long to wait after a failed Accept.
func (b *Accept) Failed() time.Duration {
	if b.d == 0 {
		b.d = 5 * time.Millisecond
	} else {
		b.d = min(2*b.d, time.Second)
	}
	return b.d
}

// Reset starts the waits over, after an Accept that succeeded.
func (b *Accept) Reset() { b.d = 0 }
