package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

func checkRecords(b []byte) error {
	h, err := segment.ValidateBatch(b, 0)
	if err != nil {
		return err
	}
	return segment.CheckRecords(b, &h)
}

// records encodes records with the given offset deltas, as a batch's
// records section.
func records(deltas ...int32) []byte {
	var out []byte
	for _, d := range deltas {
		kr := kmsg.Record{OffsetDelta: d, Key: []byte("k"), Value: []byte("v"), Headers: []kmsg.Header{{Key: "h", Value: nil}}}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		out = kr.AppendTo(out)
	}
	return out
}

// batchOf is a batch around a records section, with count records and
// lastOffsetDelta last, and a valid CRC.
func batchOf(section []byte, codec int, count, last int32) []byte {
	b := segment.BuildBatch(section, int(count), codec, 1)
	binary.BigEndian.PutUint32(b[23:], uint32(last))
	return segmenttest.FixCRC(b)
}

// TestCheckRecords: well-formed batches of every codec pass; a batch whose
// CRC matches but whose records do not hold together is ErrInvalidBatch,
// one that does not decompress (or decompresses without end)
// ErrCorruptBatch.
func TestCheckRecords(t *testing.T) {
	for codec := segment.CodecNone; codec <= segment.CodecZstd; codec++ {
		b := segmenttest.Batch{Codec: codec, Records: []segmenttest.Record{
			{Key: []byte("a"), Value: []byte("1")}, {Value: nil}, {Key: []byte("c"), Value: bytes.Repeat([]byte("x"), 5000),
				Headers: []kmsg.Header{{Key: "k", Value: []byte("v")}, {Key: "n"}}},
		}}.Build()
		if err := checkRecords(b); err != nil {
			t.Errorf("codec %d: %v", codec, err)
		}
	}
	var bomb bytes.Buffer
	w, _ := zstd.NewWriter(&bomb)
	w.Write(make([]byte, segment.MaxRecordsSection+1))
	w.Close()

	invalid := map[string][]byte{
		"offset deltas 0, 2":       batchOf(records(0, 2), segment.CodecNone, 2, 1),
		"fewer records than count": batchOf(records(0, 1), segment.CodecNone, 3, 2),
		"more records than count":  batchOf(records(0, 1, 2), segment.CodecNone, 2, 1),
		"bytes after the records":  batchOf(append(records(0), 0, 0), segment.CodecNone, 1, 0),
		"count and last disagree":  batchOf(records(0, 1), segment.CodecNone, 2, 5),
		"no records":               batchOf(nil, segment.CodecNone, 0, 0),
		"garbage":                  batchOf(bytes.Repeat([]byte{0xff}, 40), segment.CodecNone, 1, 0),
		"record length too long":   batchOf([]byte{0x7e, 0, 0, 0}, segment.CodecNone, 1, 0),
		"key beyond the record":    batchOf([]byte{8, 0, 0, 0, 0x20, 0, 0, 0, 0}, segment.CodecNone, 1, 0),
		"billions of headers":      batchOf([]byte{12, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0}, segment.CodecNone, 1, 0),
	}
	for name, b := range invalid {
		if err := checkRecords(b); !errors.Is(err, segment.ErrInvalidBatch) {
			t.Errorf("%s: %v, want ErrInvalidBatch", name, err)
		}
	}
	corrupt := map[string][]byte{
		"zstd that is not":              batchOf(bytes.Repeat([]byte{1, 2, 3}, 20), segment.CodecZstd, 1, 0),
		"gzip that is not":              batchOf(bytes.Repeat([]byte{1, 2, 3}, 20), segment.CodecGzip, 1, 0),
		"decompresses beyond the bound": batchOf(bomb.Bytes(), segment.CodecZstd, 1, 0),
	}
	for name, b := range corrupt {
		if err := checkRecords(b); !errors.Is(err, segment.ErrCorruptBatch) {
			t.Errorf("%s: %v, want ErrCorruptBatch", name, err)
		}
	}
}

// FuzzCheckRecords: any bytes are checked without a panic, and a batch
// the check accepts decodes into as many records as it counts.
func FuzzCheckRecords(f *testing.F) {
	f.Add(segmenttest.Values(1, "a", "b"))
	f.Add(segmenttest.Batch{Codec: segment.CodecLZ4, Records: []segmenttest.Record{{Value: []byte("v"), Headers: []kmsg.Header{{Key: "h"}}}}}.Build())
	f.Add(batchOf(records(0, 2), segment.CodecNone, 2, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := segment.ValidateBatch(b, 0)
		if err != nil {
			// Also the records of a batch whose CRC is fixed up.
			if len(b) < segment.BatchHeaderSize {
				return
			}
			b = segmenttest.FixCRC(b)
			if h, err = segment.ValidateBatch(b, 0); err != nil {
				return
			}
		}
		if segment.CheckRecords(b, &h) != nil {
			return
		}
		recs, err := segment.DecodeRecords(b, segment.MaxRecordsSection)
		if err != nil || len(recs) != int(h.RecordCount) {
			t.Fatalf("checked, then decoded %d of %d records: %v", len(recs), h.RecordCount, err)
		}
	})
}
