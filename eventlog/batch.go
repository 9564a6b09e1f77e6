package eventlog

import (
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/chronik-stream/chronik/segment"
)

// zstdEncoder is shared; EncodeAll is safe for concurrent use.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// buildBatch encodes events as one RecordBatch v2: one record per event,
// all at timestamp ts, the records section zstd-compressed when larger
// than compressAbove bytes (0: never). Any Kafka consumer can read it.
func buildBatch(events []Event, ts int64, compressAbove int) []byte {
	recs := make([]segment.Record, len(events))
	for i, e := range events {
		if key := e.Key(); key != "" {
			recs[i].Key = []byte(key)
		}
		recs[i].Value = Encode(e)
	}
	body := segment.AppendRecords(nil, recs)
	codec := segment.CodecNone
	if compressAbove > 0 && len(body) > compressAbove {
		body = zstdEncoder.EncodeAll(body, nil)
		codec = segment.CodecZstd
	}
	return segment.BuildBatch(body, len(events), codec, ts)
}

// maxBatchEvents bounds the decompressed size of one metadata batch.
const maxDecodedBatch = 64 << 20

// decodeBatch returns the events of one stored batch with their offsets.
func decodeBatch(batch []byte) ([]Event, []int64, error) {
	recs, err := segment.DecodeRecords(batch, maxDecodedBatch)
	if err != nil {
		h, _ := segment.ParseHeader(batch)
		return nil, nil, fmt.Errorf("eventlog: batch at offset %d: %w", h.BaseOffset, err)
	}
	events := make([]Event, len(recs))
	offsets := make([]int64, len(recs))
	for i, r := range recs {
		e, err := Decode(r.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("eventlog: event at offset %d: %w", r.Offset, err)
		}
		events[i], offsets[i] = e, r.Offset
	}
	return events, offsets, nil
}
