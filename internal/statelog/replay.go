package statelog

import "github.com/chronik-stream/chronik/segment"

// Replay calls fn with each durable batch of l from offset from on, in
// order, and returns the offset after the last one it applied (where a
// later replay goes on).
func Replay(l *segment.Log, from int64, fn func(h *segment.BatchHeader, batch []byte) error) (int64, error) {
	buf := make([]byte, 0, 1<<20)
	for from < l.HighWatermark() {
		b, err := l.Read(from, 1<<20, buf[:0])
		if err != nil {
			return from, err
		}
		for len(b) > 0 {
			h, err := segment.ParseHeader(b)
			if err != nil {
				return from, err
			}
			if h.Size() > len(b) {
				return from, segment.ErrCorruptBatch
			}
			if err := fn(&h, b[:h.Size()]); err != nil {
				return from, err
			}
			from = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return from, nil
}
