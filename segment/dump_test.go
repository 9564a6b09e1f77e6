package segment_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// dumpFixture writes a partition with every codec, headers, a null key, a
// transaction and its commit marker, and a roll, on the real file system,
// and returns its directory.
func dumpFixture(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	st, err := segment.OpenStore(data, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 300
	l, err := st.Open("orders", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ts = 1764147600000 // 2025-11-26T09:00:00Z
	batches := []segmenttest.Batch{
		{BaseTimestamp: ts, Records: []segmenttest.Record{{Key: []byte("k1"), Value: []byte("plain")}, {Value: []byte("null key"), TimestampDelta: 5}}},
		{BaseTimestamp: ts + 10, Codec: segment.CodecGzip, Records: []segmenttest.Record{{Key: []byte("g"), Value: []byte("gzip'd"), Headers: []kmsg.Header{{Key: "trace", Value: []byte("abc")}}}}},
		{BaseTimestamp: ts + 20, Codec: segment.CodecSnappy, Records: []segmenttest.Record{{Key: []byte("s"), Value: []byte("snappy")}}},
		{BaseTimestamp: ts + 30, Codec: segment.CodecLZ4, Records: []segmenttest.Record{{Key: []byte("l"), Value: []byte("lz4")}}},
		{BaseTimestamp: ts + 40, Codec: segment.CodecZstd, Records: []segmenttest.Record{{Key: []byte("z"), Value: []byte("zstd")}, {Value: []byte{0xff, 0xfe}}}},
		{BaseTimestamp: ts + 50, Idempotent: true, ProducerID: 1000, ProducerEpoch: 1, BaseSequence: 0, Records: []segmenttest.Record{{Value: nil}}},
		{BaseTimestamp: ts + 60, Idempotent: true, Transactional: true, ProducerID: 1001, Records: []segmenttest.Record{{Value: []byte("in a transaction")}}},
	}
	built := make([][]byte, 0, len(batches)+1)
	for _, b := range batches {
		built = append(built, b.Build())
	}
	built = append(built, segment.BuildMarker(1001, 0, true, 0, ts+70))
	for _, b := range built {
		a, err := l.Append(b, 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(data, "orders-0")
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	segmenttest.Golden(t, name, got, *update)
}

func runDump(t *testing.T, dir string, opts segment.DumpOptions) ([]byte, segment.DumpResult) {
	t.Helper()
	var out bytes.Buffer
	res, err := segment.Dump(&out, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(out.Bytes(), []byte(dir), []byte("<dir>")), res
}

func TestDumpGolden(t *testing.T) {
	dir := dumpFixture(t)
	tests := []struct {
		name string
		opts segment.DumpOptions
	}{
		{"dump.txt", segment.DumpOptions{To: -1}},
		{"dump-records.txt", segment.DumpOptions{Records: true, To: -1}},
		{"dump-records.jsonl", segment.DumpOptions{Records: true, JSON: true, To: -1}},
		{"dump-from-to.txt", segment.DumpOptions{Records: true, From: 1, To: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, res := runDump(t, dir, tc.opts)
			if len(res.Damage) != 0 {
				t.Fatalf("damage in a good log: %+v", res.Damage)
			}
			golden(t, tc.name, out)
		})
	}
}

func TestDumpReportsDamage(t *testing.T) {
	dir := dumpFixture(t)
	first := filepath.Join(dir, "00000000000000000000.log")
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b[70] ^= 1 // a record byte of the first batch: CRC mismatch
	os.WriteFile(first, b, 0o644)
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	last := names[len(names)-1]
	f, _ := os.OpenFile(last, os.O_RDWR, 0)
	st, _ := f.Stat()
	f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 0, 2}, st.Size()) // a torn batch header
	f.Close()

	out, res := runDump(t, dir, segment.DumpOptions{Records: true, To: -1})
	if len(res.Damage) != 2 {
		t.Fatalf("want 2 damage reports, got %+v", res.Damage)
	}
	if !strings.Contains(string(out), "crc=bad") || !strings.Contains(string(out), `damage file=<dir>/00000000000000000000.log position=0 offset=-1 reason="segment: corrupt record batch: CRC-32C is`) {
		t.Errorf("bad CRC not shown:\n%s", out)
	}
	// The dump went on past the bad CRC to the later batches.
	if res.Batches != 8 {
		t.Errorf("dumped %d batches, want 8", res.Batches)
	}
}
