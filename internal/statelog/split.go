package statelog

import "github.com/chronik-stream/chronik/segment"

// MaxBatchBytes bounds the record bytes of one batch that Split makes,
// well under an internal partition's max.message.bytes.
const MaxBatchBytes = 256 << 10

// Split cuts recs, in order, into batches of at most MaxBatchBytes of keys
// and values (one record more if it alone is larger): a state of any size
// is written as batches the log accepts.
func Split(recs []segment.Record) [][]segment.Record {
	var out [][]segment.Record
	start, bytes := 0, 0
	for i, r := range recs {
		if bytes+len(r.Key)+len(r.Value) > MaxBatchBytes && i > start {
			out = append(out, recs[start:i])
			start, bytes = i, 0
		}
		bytes += len(r.Key) + len(r.Value)
	}
	if start < len(recs) {
		out = append(out, recs[start:])
	}
	return out
}
