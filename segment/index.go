package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
)

// Index file formats (part of the on-disk format). Both are written when a
// segment is sealed; the active segment's indexes live in memory and are
// rebuilt by the recovery scan.
//
//	.index      entries of 8 bytes:  relative base offset uint32 | file position uint32
//	.timeindex  entries of 12 bytes: max timestamp so far int64  | relative base offset uint32
//	both end in a trailer: magic "CKIX" (.index) or "CKTI" (.timeindex) | CRC-32C of the entries uint32
//
// An .index entry says the batch at that position starts at base+relative.
// A .timeindex entry says every batch up to and including the one starting
// at base+relative has a max timestamp <= the entry's timestamp. Both are
// big-endian and strictly increasing in offset; timestamps never decrease.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
	trailerSize     = 8
	offsetMagic     = "CKIX"
	timeMagic       = "CKTI"
)

func appendTrailer(b []byte, magic string) []byte {
	b = append(b, magic...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[:len(b)-len(magic)], crc32c))
}

// checkTrailer returns the entries of an index file whose trailer matches.
func checkTrailer(b []byte, magic string) ([]byte, error) {
	if len(b) < trailerSize {
		return nil, fmt.Errorf("index file of %d bytes has no trailer", len(b))
	}
	entries, tr := b[:len(b)-trailerSize], b[len(b)-trailerSize:]
	if string(tr[:4]) != magic {
		return nil, fmt.Errorf("index file trailer magic %q, want %q", tr[:4], magic)
	}
	if got, want := crc32.Checksum(entries, crc32c), binary.BigEndian.Uint32(tr[4:]); got != want {
		return nil, fmt.Errorf("index file checksum %08x, the trailer says %08x", got, want)
	}
	return entries, nil
}

type offsetEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

// indexes are a segment's sparse offset and time indexes.
type indexes struct {
	offsets []offsetEntry
	times   []timeEntry
	// sinceEntry counts log bytes appended since the last offset entry.
	sinceEntry int
	// maxTs is the highest batch max timestamp in the segment, -1 if none.
	maxTs int64
	// maxTsRel is the relative offset of the batch holding maxTs.
	maxTsRel uint32
}

func newIndexes() indexes { return indexes{maxTs: -1} }

// add records the batch h at pos, relative to segment base offset base.
func (x *indexes) add(base int64, pos int, h *BatchHeader, interval int) {
	rel := uint32(h.BaseOffset - base)
	if h.MaxTimestamp > x.maxTs {
		x.maxTs, x.maxTsRel = h.MaxTimestamp, rel
	}
	if x.sinceEntry >= interval {
		x.offsets = append(x.offsets, offsetEntry{rel: rel, pos: uint32(pos)})
		if n := len(x.times); n == 0 || x.maxTs > x.times[n-1].ts {
			x.times = append(x.times, timeEntry{ts: x.maxTs, rel: x.maxTsRel})
		}
		x.sinceEntry = 0
	}
	x.sinceEntry += h.Size()
}

// seal appends a final time entry so that the last one holds the segment's
// max timestamp, as Kafka does when it rolls a segment.
func (x *indexes) seal() {
	if n := len(x.times); x.maxTs >= 0 && (n == 0 || x.maxTs > x.times[n-1].ts) {
		x.times = append(x.times, timeEntry{ts: x.maxTs, rel: x.maxTsRel})
	}
}

// lookup returns the file position from which to scan for offset rel.
func (x *indexes) lookup(rel uint32) int {
	i := sort.Search(len(x.offsets), func(i int) bool { return x.offsets[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int(x.offsets[i-1].pos)
}

// lookupTime returns the relative offset of a batch from which scanning
// forward finds the first batch with max timestamp >= ts.
func (x *indexes) lookupTime(ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(x.times), func(i int) bool { return x.times[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return x.times[i-1].rel, true
}

func (x *indexes) encodeOffsets() []byte {
	b := make([]byte, len(x.offsets)*offsetEntrySize, len(x.offsets)*offsetEntrySize+trailerSize)
	for i, e := range x.offsets {
		binary.BigEndian.PutUint32(b[i*offsetEntrySize:], e.rel)
		binary.BigEndian.PutUint32(b[i*offsetEntrySize+4:], e.pos)
	}
	return appendTrailer(b, offsetMagic)
}

func (x *indexes) encodeTimes() []byte {
	b := make([]byte, len(x.times)*timeEntrySize, len(x.times)*timeEntrySize+trailerSize)
	for i, e := range x.times {
		binary.BigEndian.PutUint64(b[i*timeEntrySize:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*timeEntrySize+8:], e.rel)
	}
	return appendTrailer(b, timeMagic)
}

// decodeIndexes parses and checks a sealed segment's index files against
// the segment: logSize bytes holding offsets [base, next). Any entry that
// could not have been written for this segment is an error, and the caller
// rebuilds the indexes by scanning.
func decodeIndexes(offs, times []byte, base, next int64, logSize int64) (indexes, error) {
	x := newIndexes()
	offs, err := checkTrailer(offs, offsetMagic)
	if err != nil {
		return x, err
	}
	times, err = checkTrailer(times, timeMagic)
	if err != nil {
		return x, err
	}
	if len(offs)%offsetEntrySize != 0 {
		return x, fmt.Errorf("offset index size %d is not a multiple of %d", len(offs), offsetEntrySize)
	}
	if len(times)%timeEntrySize != 0 {
		return x, fmt.Errorf("time index size %d is not a multiple of %d", len(times), timeEntrySize)
	}
	span := next - base
	x.offsets = make([]offsetEntry, 0, len(offs)/offsetEntrySize)
	for i := 0; i < len(offs); i += offsetEntrySize {
		e := offsetEntry{rel: binary.BigEndian.Uint32(offs[i:]), pos: binary.BigEndian.Uint32(offs[i+4:])}
		if int64(e.rel) >= span || int64(e.pos) >= logSize {
			return x, fmt.Errorf("offset index entry %d (offset +%d at %d) lies outside the segment", i/offsetEntrySize, e.rel, e.pos)
		}
		if n := len(x.offsets); n > 0 && (e.rel <= x.offsets[n-1].rel || e.pos <= x.offsets[n-1].pos) {
			return x, fmt.Errorf("offset index entry %d is out of order", i/offsetEntrySize)
		}
		x.offsets = append(x.offsets, e)
	}
	x.times = make([]timeEntry, 0, len(times)/timeEntrySize)
	for i := 0; i < len(times); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(times[i:])), rel: binary.BigEndian.Uint32(times[i+8:])}
		if int64(e.rel) >= span {
			return x, fmt.Errorf("time index entry %d (offset +%d) lies outside the segment", i/timeEntrySize, e.rel)
		}
		if n := len(x.times); n > 0 && (e.ts <= x.times[n-1].ts || e.rel < x.times[n-1].rel) {
			return x, fmt.Errorf("time index entry %d is out of order", i/timeEntrySize)
		}
		x.times = append(x.times, e)
	}
	if logSize > 0 && len(x.times) == 0 {
		return x, fmt.Errorf("time index is empty for a segment of %d bytes", logSize)
	}
	if n := len(x.times); n > 0 {
		x.maxTs, x.maxTsRel = x.times[n-1].ts, x.times[n-1].rel
	}
	return x, nil
}
