package kafka

import (
	"math/bits"
	"sync"
)

// Large request frames come from pools by power-of-two capacity, and a
// produce request's frame goes back once its response is written (its
// records are copied into the log by then, and nothing else keeps them).
// A batching client sends megabytes per produce request, one request in
// flight (kgo's idempotent producer): allocating and zeroing a fresh frame
// for each cost the round trip 0.25 ms at the median and 2.6 ms at p90
// (GC assists); pooled, 1 KiB records from one client went from 440-460 to
// 550-610 MB/s on disk (650-720 to 940-1040 on tmpfs), in alternating
// runs. Frames of other requests are left to the GC: their decoded
// fields may keep parts of them (a JoinGroup's member metadata). Response
// frames come from the pools too and go back once written, as do the
// buffers a fetch reads each partition's records into, once its response
// is framed (releaseFetch): a consumer's fetches had spent a quarter of
// the CPU allocating and zeroing them. Frames over maxPooledFrame are
// allocated at their size, so that rounding up to a power of two never
// doubles a 100 MiB request.
const (
	minPooledFrame = 64 << 10
	maxPooledFrame = 32 << 20
)

var framePools [26]sync.Pool // by log2 of the capacity, up to maxPooledFrame

// getFrame returns a frame of size bytes; its contents are not zeroed.
func getFrame(size int) []byte {
	if size < minPooledFrame || size > maxPooledFrame {
		return make([]byte, size)
	}
	c := bits.Len(uint(size - 1))
	if p, ok := framePools[c].Get().(*[]byte); ok {
		return (*p)[:size]
	}
	return make([]byte, size, 1<<c)
}

// putFrame gives a frame from getFrame back for reuse; the caller no longer
// uses it, nor anything decoded from it.
func putFrame(b []byte) {
	c := cap(b)
	if c < minPooledFrame || c > maxPooledFrame || c&(c-1) != 0 {
		return
	}
	b = b[:0]
	framePools[bits.Len(uint(c-1))].Put(&b)
}
