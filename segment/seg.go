package segment

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File name suffixes (Kafka's, so that operators recognise them).
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

func segmentName(base int64, suffix string) string { return fmt.Sprintf("%020d%s", base, suffix) }

// parseSegmentName returns the base offset of a NNNNNNNNNNNNNNNNNNNN.log name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// segment is one file of a partition's log: [base, next).
type segment struct {
	base int64
	path string // of the .log file

	// Guarded by Log.mu.
	next  int64 // offset after the last batch; next >= base
	size  int64 // bytes of whole batches in the file
	maxTs int64 // highest batch max timestamp, -1 when empty
	// maxTsOffset is the base offset of the first batch with maxTs; kept
	// for sealed segments (the active one is walked, as its indexes also
	// cover batches not yet durable).
	maxTsOffset int64

	// active is set while this is the log's last, writable segment.
	active *activeFile
	// sealed is the on-demand read-only view of a sealed segment.
	sealed sealedView
}

// activeFile is the open, mapped, writable state of the active segment.
type activeFile struct {
	f   File
	m   Mapping
	buf []byte // m.Bytes(); len is the segment's size limit
	// mmapWrites: appends copy into buf (mapped read-write) instead of
	// pwrite (buf mapped read-only).
	mmapWrites bool
	idx        indexes
	// allocated bytes of the file have disk blocks; size <= allocated.
	allocated int64
	// preparing is true while a background allocation is extending the file.
	preparing bool
	// The committer's syncs of f, which may overlap (two rounds in
	// flight): how many started and how many were decided, the numbers of
	// those still in fsync, and how many fsyncs failed. Linux reports a
	// failed writeback once per open file, to whichever sync asks first, so
	// a sync that succeeds may have covered pages whose loss another one
	// was told of: a sync is decided only once every sync started before
	// its fsync returned has returned too, and fails if any failed since it
	// started. A sync that starts after another's fsync failed is decided
	// after that one has dropped what it lost (failing: the failed syncs not
	// yet decided): deciding first, it succeeded and acknowledged the lost
	// writes. Whoever else syncs f (a roll, a close, a truncation) waits
	// until no sync is undecided (busy).
	syncsStarted, syncsDone uint64
	inSync, failing         []uint64
	syncFails               uint64
	// synced bytes are durable; synced <= size.
	synced int64
	// rolledAt is when the segment was created or its first batch appended.
	rolledAt time.Time
}

// busy reports whether a background allocation or a sync is using the
// file; whoever rolls, closes, truncates or syncs it waits until not.
func (a *activeFile) busy() bool { return a.preparing || a.syncsDone != a.syncsStarted }

// sealedView maps a sealed segment read-only while readers use it.
type sealedView struct {
	mu   sync.Mutex
	refs atomic.Int32
	f    File
	m    Mapping
	idx  *indexes
	// lastUse orders segments for eviction from the mapping cache.
	lastUse uint64
	// removed is set once retention has deleted the files; the last reader
	// unmaps.
	removed bool
}

func (s *segment) logPath() string   { return s.path }
func (s *segment) indexPath() string { return strings.TrimSuffix(s.path, logSuffix) + indexSuffix }
func (s *segment) timeIndexPath() string {
	return strings.TrimSuffix(s.path, logSuffix) + timeIndexSuffix
}

func newSegment(dir string, base int64) *segment {
	return &segment{base: base, next: base, maxTs: -1, path: filepath.Join(dir, segmentName(base, logSuffix))}
}

// The readers below walk stored batches, which were validated when they
// were appended or recovered, reading only the header fields they need.

// storedSize is the size of the stored batch at the start of b, or 0 if b
// does not hold a whole one.
func storedSize(b []byte) int {
	if len(b) < BatchHeaderSize { // also when an index hint lies past b
		return 0
	}
	n := int(int32(binary.BigEndian.Uint32(b[offBatchLength:]))) + lengthFieldEnd
	if n < BatchHeaderSize || n > len(b) {
		return 0
	}
	return n
}

func storedLastOffset(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) + int64(int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])))
}

// findBatch returns the position of the batch holding offset in data, which
// holds whole batches from base, scanning from the index hint.
func findBatch(data []byte, x *indexes, base, offset int64) (int, bool) {
	for pos := min(x.lookup(uint32(offset-base)), len(data)); ; {
		n := storedSize(data[pos:])
		if n == 0 {
			return 0, false
		}
		if storedLastOffset(data[pos:]) >= offset {
			return pos, true
		}
		pos += n
	}
}

// batchesUpTo returns the end position of the run of whole batches that
// starts at pos and fits in maxBytes, but always at least one batch.
func batchesUpTo(data []byte, pos, maxBytes int) int {
	end := pos
	for {
		n := storedSize(data[end:])
		if n == 0 || (end > pos && end+n-pos > maxBytes) {
			return end
		}
		end += n
	}
}

// findTime returns the position of the first batch in data whose max
// timestamp is >= ts.
func findTime(data []byte, x *indexes, ts int64) (int, bool) {
	pos := 0
	if rel, ok := x.lookupTime(ts); ok {
		pos = x.lookup(rel)
	}
	if pos >= len(data) {
		// The hint names a batch appended but not yet durable (the active
		// segment's indexes run ahead of its high watermark): scan the
		// durable part from its start.
		pos = 0
	}
	for {
		n := storedSize(data[pos:])
		if n == 0 {
			return 0, false
		}
		if int64(binary.BigEndian.Uint64(data[pos+offMaxTimestamp:])) >= ts {
			return pos, true
		}
		pos += n
	}
}
