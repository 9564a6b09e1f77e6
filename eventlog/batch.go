package eventlog

import (
	"errors"
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
	return recordsBatch(eventRecords(events), ts, compressAbove)
}

// eventRecords returns events as records: key the entity, value the event.
func eventRecords(events []Event) []segment.Record {
	recs := make([]segment.Record, len(events))
	for i, e := range events {
		if key := e.Key(); key != "" {
			recs[i].Key = []byte(key)
		}
		recs[i].Value = Encode(e)
	}
	return recs
}

// recordsBatch is buildBatch of events already made records.
func recordsBatch(recs []segment.Record, ts int64, compressAbove int) []byte {
	body := segment.AppendRecords(nil, recs)
	codec := segment.CodecNone
	if compressAbove > 0 && len(body) > compressAbove {
		body = zstdEncoder.EncodeAll(body, nil)
		codec = segment.CodecZstd
	}
	return segment.BuildBatch(body, len(recs), codec, ts)
}

// recordsSize bounds the size of recs as a batch's records section: each
// record's key and value and, at their longest, its length, attributes,
// deltas, key and value lengths and header count.
func recordsSize(recs []segment.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value) + recordOverhead
	}
	return n
}

const recordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 1

// maxBatchRecords bounds the records section of a metadata batch the log
// writes (a change larger than that is ErrTooLarge), well below what
// readers decode (maxDecodedBatch), and so that a batch, shipped to a
// follower or proposed to Raft, fits in one frame. A log of small segments
// bounds it lower (batchBound).
const maxBatchRecords = 24 << 20

// batchBound is the bound on a batch's records in a log of segments of
// segBytes: maxBatchRecords, or less so that the batch, stored, fits in a
// segment.
func batchBound(segBytes int64) int {
	return int(min(maxBatchRecords, segBytes-segBytes/8))
}

// storedBound bounds a batch as stored whose records are at most bound:
// records that compression made no smaller (zstd adds a little to such
// data), and the header.
func storedBound(bound int) int {
	return bound + bound/64 + 4096
}

// ErrTooLarge: a metadata change too large to be written in one batch (it
// must be atomic): the request should be split.
var ErrTooLarge = errors.New("eventlog: metadata change too large for one batch")

// maxDecodedBatch bounds the decompressed size of one metadata batch.
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
