package segment

import (
	"math/rand/v2"
	"testing"
)

// TestLastNonZero checks the chunked search against a byte-by-byte one,
// with non-zero bytes at and around the chunk boundaries.
func TestLastNonZero(t *testing.T) {
	naive := func(b []byte) int {
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return i + 1
			}
		}
		return 0
	}
	c := len(zeroChunk)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, c - 1, c, c + 1, 3*c + 17} {
		for _, at := range []int{-1, 0, 1, c - 1, c, c + 1, 2 * c, size - 1, rng.IntN(size + 1)} {
			b := make([]byte, size)
			if at >= 0 && at < size {
				b[at] = 1
			}
			if size > 2 && rng.IntN(2) == 0 {
				b[rng.IntN(size/2)] = 7 // an earlier non-zero byte too
			}
			if got, want := lastNonZero(b), naive(b); got != want {
				t.Fatalf("size %d, byte at %d: %d, want %d", size, at, got, want)
			}
		}
	}
}
