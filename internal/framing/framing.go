// Package framing reads the bodies of length-prefixed frames from peers
// (the replication port's Raft and metadata streams) without trusting the
// length: memory grows with the bytes that arrive, not with the bytes a
// peer announces.
package framing

import (
	"io"
	"slices"
)

// eager is the body size allocated at once; larger bodies grow as they
// arrive.
const eager = 64 << 10

// ReadBody reads a frame body of n bytes from r. Up to 64 KiB it is
// allocated at once; beyond, the buffer doubles as each part arrives, so a
// peer that announces a large frame and then sends little or stalls holds
// at most about twice what it sent. A short body is io.ErrUnexpectedEOF.
func ReadBody(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, eager))
	for len(b) < n {
		have := len(b)
		next := min(n, max(2*have, eager))
		b = slices.Grow(b, next-have)[:next]
		if _, err := io.ReadFull(r, b[have:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}
