package segment_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func seedBatches() [][]byte {
	good := segmenttest.Values(1, "a", "b")
	var zstd, gz []byte
	zstd = segmenttest.Batch{Codec: segment.CodecZstd, Records: []segmenttest.Record{{Value: []byte("zz")}}}.Build()
	gz = segmenttest.Batch{Codec: segment.CodecGzip, Records: []segmenttest.Record{{Value: []byte("gg")}}}.Build()
	return [][]byte{
		good, zstd, gz,
		{},
		good[:segment.BatchHeaderSize],
		append(bytes.Clone(good), 0xde, 0xad),
		segmenttest.Sized(1, 4096),
	}
}

// FuzzValidateBatch: no input panics, and an accepted batch is exactly one
// whole batch within the limit.
func FuzzValidateBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b, 1<<20)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		h, err := segment.ValidateBatch(b, limit)
		if err != nil {
			return
		}
		if h.Size() != len(b) || (limit > 0 && len(b) > limit) || h.Magic != 2 {
			t.Fatalf("accepted batch of %d bytes with size %d, magic %d, limit %d", len(b), h.Size(), h.Magic, limit)
		}
	})
}

// FuzzNextBatch: whatever the bytes, NextBatch returns a whole batch at
// their start, at least a header long, or an error; it never panics.
func FuzzNextBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
		if len(b) > 0 {
			f.Add(b[:len(b)-1])
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, batch, err := segment.NextBatch(b)
		if err != nil {
			return
		}
		if len(batch) != h.Size() || len(batch) < segment.BatchHeaderSize || len(batch) > len(b) || &batch[0] != &b[0] {
			t.Fatalf("a batch of %d bytes (header size %d) from %d", len(batch), h.Size(), len(b))
		}
	})
}

// FuzzRecoveryScan opens a log whose active segment holds arbitrary bytes,
// after valid batches or on its own, with or without a recovery point. The
// open either fails with a CorruptionError or yields a log whose every
// served batch is valid and which takes appends.
func FuzzRecoveryScan(f *testing.F) {
	two := append(stored(segmenttest.Values(1, "a"), 0, 0), stored(segmenttest.Values(2, "b", "c"), 1, 0)...)
	f.Add(two, false)
	f.Add(two[:len(two)-3], true)
	f.Add(append(bytes.Clone(two), make([]byte, 100)...), true)
	f.Add(append(append(bytes.Clone(two), make([]byte, 4096)...), 1, 2, 3), false)
	f.Add([]byte{}, false)
	f.Add(bytes.Repeat([]byte{0xff}, 200), true)
	f.Fuzz(func(t *testing.T, data []byte, withPoint bool) {
		if len(data) > 1<<20 {
			return
		}
		fs := segmenttest.NewMemFS()
		fs.MkdirAll("/d/p-0", 0o755)
		fs.WriteFile("/d/p-0/00000000000000000000.log", data)
		if withPoint {
			// A point in the middle of the data: damage before it is corruption.
			writePoint(t, fs, int64(len(data)/2))
		}
		st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		cfg := segment.DefaultConfig()
		cfg.SegmentBytes = 2 << 20
		l, err := st.Open("p", 0, cfg)
		if err != nil {
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("open failed with a non-corruption error: %v", err)
			}
			return
		}
		for off := l.StartOffset(); off < l.HighWatermark(); {
			b, err := l.Read(off, 1, nil)
			if err != nil {
				t.Fatalf("read %d: %v", off, err)
			}
			h, err := segment.ValidateBatch(b, 0)
			if err != nil || h.BaseOffset != off {
				t.Fatalf("served an invalid batch at %d: %v", off, err)
			}
			off = h.LastOffset() + 1
		}
		end := l.EndOffset()
		a, err := l.Append(segmenttest.Values(1, "x"), 0, 1)
		if err != nil || a.Wait() != nil || a.Base != end {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// writePoint writes a recovery point naming position pos of segment 0.
func writePoint(t *testing.T, fs *segmenttest.MemFS, pos int64) {
	t.Helper()
	fs.WriteFile("/d/p-0/recovery-point", segment.EncodeRecoveryPointForTest(0, pos))
}

// FuzzIndexFiles opens a log whose sealed segment has arbitrary index
// files. Whatever they hold, reads and time lookups give the same answers
// as with good indexes.
func FuzzIndexFiles(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 16), make([]byte, 24))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1})
	f.Add(bytes.Repeat([]byte{0xff}, 64), bytes.Repeat([]byte{0x7f}, 48))
	f.Fuzz(func(t *testing.T, offs, times []byte) {
		fs := segmenttest.NewMemFS()
		cfg := segment.DefaultConfig()
		cfg.SegmentBytes = 2000
		cfg.IndexIntervalBytes = 200
		open := func() (*segment.Store, *segment.Log) {
			st, err := segment.OpenStore("/d", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			l, err := st.Open("p", 0, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return st, l
		}
		st, l := open()
		for i := range 12 {
			a, _ := l.Append(segmenttest.Sized(int64(100+10*i), 300), 0, 1)
			a.Wait()
		}
		st.Close()
		fs.WriteFile("/d/p-0/00000000000000000000.index", offs)
		fs.WriteFile("/d/p-0/00000000000000000000.timeindex", times)
		st, l = open()
		defer st.Close()
		for off := int64(0); off < 12; off++ {
			b, err := l.Read(off, 1, nil)
			if h, herr := segment.ParseHeader(b); err != nil || herr != nil || h.BaseOffset != off {
				t.Fatalf("read %d after damaged indexes: %v", off, err)
			}
		}
		for i := range 12 {
			got, _, ok, err := l.LookupTime(int64(100 + 10*i))
			if err != nil || !ok || got != int64(i) {
				t.Fatalf("LookupTime(%d) = %d %v %v", 100+10*i, got, ok, err)
			}
		}
	})
}

// FuzzDecodeRecords: the records of arbitrary batches (compressed with any
// codec) decode or fail cleanly, never past the decompression limit.
func FuzzDecodeRecords(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	for codec := range 5 {
		f.Add(segmenttest.Batch{Codec: codec, Records: []segmenttest.Record{{Key: []byte("k"), Value: []byte("v")}, {Value: nil}}}.Build())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := segment.DecodeRecords(b, 1<<20)
		if err != nil {
			return
		}
		h, _ := segment.ParseHeader(b)
		if len(recs) != int(h.RecordCount) {
			t.Fatalf("%d records decoded, the header says %d", len(recs), h.RecordCount)
		}
	})
}

// FuzzDecompress: any bytes under any codec decompress to at most the
// limit or fail.
func FuzzDecompress(f *testing.F) {
	for codec := 1; codec <= 4; codec++ {
		b := segmenttest.Batch{Codec: codec, Records: []segmenttest.Record{{Value: bytes.Repeat([]byte("ab"), 300)}}}.Build()
		f.Add(codec, b[segment.BatchHeaderSize:])
	}
	f.Add(2, []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3, 2, 4, 'x'})
	f.Fuzz(func(t *testing.T, codec int, b []byte) {
		out, err := segment.Decompress(codec, b, 4096)
		if err == nil && codec != segment.CodecNone && len(out) > 4096 {
			t.Fatalf("decompressed %d bytes past the limit", len(out))
		}
	})
}
