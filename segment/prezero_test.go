package segment_test

import (
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestZeroingFollowsBatchSize: allocation steps ahead of small batches are
// zeroed (every byte written twice); once the batches are large, only the
// first step is, and the data is written once.
func TestZeroingFollowsBatchSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batch     int
		zeroSteps func(steps int64) bool // how many whole steps were zeroed
	}{
		{"small batches", 4 << 10, func(steps int64) bool { return steps >= 2 }},
		{"large batches", 256 << 10, func(steps int64) bool { return steps <= 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := segment.DefaultConfig()
			cfg.PreallocateBytes = 1 << 20
			cfg.RetentionMs = -1
			e := newEnv(t, cfg)
			batch := segmenttest.Sized(1, tc.batch)
			before := e.fs.Written()
			var data int64
			for data < 4<<20 {
				e.append(batch)
				data += int64(len(batch))
			}
			zeroed := e.fs.Written() - before - data
			if steps := zeroed / cfg.PreallocateBytes; !tc.zeroSteps(steps) {
				t.Fatalf("%d B batches: %d B of data, %d B more written (%d steps of zeros)", len(batch), data, zeroed, steps)
			}
		})
	}
}
