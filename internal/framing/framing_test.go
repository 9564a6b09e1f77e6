package framing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

// asking records the largest read it is asked for.
type asking struct {
	r       io.Reader
	largest int
}

func (a *asking) Read(p []byte) (int, error) {
	a.largest = max(a.largest, len(p))
	return a.r.Read(p)
}

func TestReadBody(t *testing.T) {
	for _, n := range []int{0, 1, eager - 1, eager, eager + 1, 3*eager + 17, 1 << 20} {
		want := make([]byte, n)
		rand.Read(want)
		got, err := ReadBody(bytes.NewReader(append(want, "next frame"...)), n)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: %v, equal %v", n, err, bytes.Equal(got, want))
		}
	}
}

// TestReadBodyGrowsWithWhatArrives: a peer announces 64 MiB and sends
// 100 KiB; the reader never asks for more than what arrived plus a
// doubling, and says the body was cut short.
func TestReadBodyGrowsWithWhatArrives(t *testing.T) {
	sent := 100 << 10
	a := &asking{r: bytes.NewReader(make([]byte, sent))}
	_, err := ReadBody(a, 64<<20)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a body cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	if a.largest > 2*sent {
		t.Fatalf("asked for a read of %d bytes after %d arrived", a.largest, sent)
	}
}
