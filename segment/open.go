package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const osRDWRCreate = os.O_RDWR | os.O_CREATE

// openLog opens (creating if needed) the partition log in dir for st and
// recovers it: sealed segments' indexes are checked and rebuilt if needed,
// and the active segment is CRC-checked to its end, a torn tail truncated.
// cleanTail says that the store was stopped cleanly and this log not opened
// since: its recovery point, if at the end of the valid batches, is where
// it was closed, and nothing was written past it. With trySpare (a
// partition never on disk) the directory is a spare renamed into place,
// if one is ready.
func openLog(st *Store, dir string, cfg Config, cleanTail, trySpare bool) (*Log, error) {
	fsys, log := st.fs, st.log
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spare := trySpare && st.useSpare(dir)
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment: create partition directory: %w", err)
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("segment: list partition directory: %w", err)
	}
	l := &Log{dir: dir, fs: fsys, cfg: cfg, c: st.c, cache: st.cache, prep: st.prep, unclean: &st.unclean, limit: st.limit, log: log.With("partition", filepath.Base(dir)), notify: make(chan struct{})}
	l.idle = sync.NewCond(&l.mu)
	for _, name := range names {
		if base, ok := parseSegmentName(name); ok {
			l.segments = append(l.segments, newSegment(dir, base))
		}
	}
	rp, rpOK := readRecoveryPoint(fsys, dir)
	if rpOK {
		// The next recovery point must outrank both slots of the file:
		// counting from zero again, a write into one slot left the other,
		// older one ranked first.
		l.rpSeq = rp.seq
	}
	fresh := len(l.segments) == 0
	if fresh {
		// A new partition: its directory entry and its first segment's
		// become durable with its first data (see Log.sync), or when it
		// is closed. Until then a crash may lose the empty partition,
		// which open recreates.
		l.segments = append(l.segments, newSegment(dir, 0))
	}
	// A spare renamed into place is made here too, with its first
	// segment empty.
	l.created = fresh || spare
	// An existing partition's entries too: an earlier process may have
	// made them and stopped before syncing them, and the data this one
	// acknowledges must not live in a file a crash can unlink.
	l.dirsUnsynced = []string{filepath.Dir(dir), dir}
	for i, s := range l.segments[:len(l.segments)-1] {
		if err := l.openSealed(s, l.segments[i+1].base); err != nil {
			l.closeSealed()
			return nil, err
		}
	}
	trusted, err := l.openActive(rp, rpOK, cleanTail)
	if err != nil {
		l.closeSealed()
		return nil, err
	}
	l.start = l.segments[0].base
	l.next = l.active().next
	l.durable = l.next
	if off, found, err := readStartOffset(fsys, dir); err != nil {
		l.log.Warn("log start offset", "error", err)
	} else if found {
		// Written only for offsets that were durable, which recovery keeps.
		l.start = min(max(l.start, off), l.next)
	}
	if fresh || spare || trusted {
		// Nothing recovered (a spare's segment is empty): no recovery
		// point is the same as one at the start, and the first checkpoint
		// comes after the usual interval; or the recovery point is
		// already where the log ends.
		l.rpAt = time.Now()
		return l, nil
	}
	// Record the recovered state so that a crash from here on is judged
	// against it. If it cannot be (a full disk), the recovery point on
	// disk, if any, is older and still true (recovery kept all it says
	// was synced): a crash is judged against that one, which checks more
	// of the segment, and the next checkpoint tries again. A full disk
	// must not keep the node from starting, and from freeing space.
	seg := l.active()
	l.syncMu.Lock()
	if err := l.writeRecoveryPointLocked(seg.base, seg.size); err != nil {
		l.limit.Log(l.log, slog.LevelWarn, "cannot record the recovered state; until a later checkpoint, a crash is judged against the recovery point before it", "error", err)
	}
	l.syncMu.Unlock()
	return l, nil
}

func (l *Log) closeSealed() {
	for _, s := range l.segments {
		if s.active != nil {
			s.active.m.Unmap()
			s.active.f.Close()
		}
	}
}

func readRecoveryPoint(fsys FS, dir string) (recoveryPoint, bool) {
	f, err := fsys.OpenFile(filepath.Join(dir, recoveryPointFile), os.O_RDONLY, 0)
	if err != nil {
		return recoveryPoint{}, false
	}
	defer f.Close()
	b := make([]byte, 2*rpSlotSize)
	n, _ := f.ReadAt(b, 0)
	return decodeRecoveryPoint(b[:n])
}

// openSealed learns a sealed segment's size and max timestamp and checks
// (or rebuilds) its index files.
func (l *Log) openSealed(s *segment, next int64) error {
	f, err := l.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("segment: open %s: %w", s.path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("segment: stat %s: %w", s.path, err)
	}
	if next <= s.base {
		return &CorruptionError{Path: s.path, Offset: s.base, Why: fmt.Sprintf("the next segment starts at offset %d, not after this one", next)}
	}
	s.next, s.size = next, size
	idx, err := readIndexFiles(l.fs, s, next, size)
	if err != nil {
		// Rebuild from the log itself.
		data := make([]byte, size)
		if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("segment: read %s: %w", s.path, err)
		}
		if err := l.trimSealed(s, data); err != nil {
			return err
		}
		rebuilt, rerr := rebuildIndexes(l.fs, l.log, s, data[:s.size], next, l.cfg.IndexIntervalBytes, err)
		if rerr != nil {
			return rerr
		}
		idx = rebuilt
	}
	s.maxTs, s.maxTsOffset = idx.maxTs, s.base+int64(idx.maxTsRel)
	return nil
}

// trimSealed cuts the zeros a crash during a roll leaves after a sealed
// segment's last batch (the file was preallocated and not yet trimmed).
func (l *Log) trimSealed(s *segment, data []byte) error {
	stop, _ := scanBatches(data, 0, s.base, nil)
	if !stop.Clean || stop.Pos == len(data) || lastNonZero(data[stop.Pos:]) != 0 {
		return nil // nothing to trim, or damage that rebuildIndexes reports
	}
	f, err := l.fs.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("segment: open %s to trim it: %w", s.path, err)
	}
	err = f.Truncate(int64(stop.Pos))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("segment: trim %s: %w", s.path, err)
	}
	l.log.Info("trimmed preallocated tail of a sealed segment", "file", filepath.Base(s.path), "position", stop.Pos, "bytes", len(data)-stop.Pos)
	s.size = int64(stop.Pos)
	return nil
}

// readIndexFiles loads a sealed segment's index files and checks them.
func readIndexFiles(fsys FS, s *segment, next, size int64) (indexes, error) {
	offs, err := ReadFile(fsys, s.indexPath(), size)
	if err != nil {
		return newIndexes(), err
	}
	times, err := ReadFile(fsys, s.timeIndexPath(), size)
	if err != nil {
		return newIndexes(), err
	}
	idx, err := decodeIndexes(offs, times, s.base, next, size)
	if err != nil {
		return idx, err
	}
	// Spot-check the last offset entry against the log.
	if n := len(idx.offsets); n > 0 {
		e := idx.offsets[n-1]
		f, err := fsys.OpenFile(s.path, os.O_RDONLY, 0)
		if err != nil {
			return idx, err
		}
		defer f.Close()
		var hdr [8]byte
		if _, err := f.ReadAt(hdr[:], int64(e.pos)); err != nil {
			return idx, err
		}
		if got := int64(beUint64(hdr[:])); got != s.base+int64(e.rel) {
			return idx, fmt.Errorf("offset index says offset %d is at position %d, the log has %d there", s.base+int64(e.rel), e.pos, got)
		}
	}
	return idx, nil
}

// ReadFile reads a whole file, refusing one larger than limit bytes.
func ReadFile(fsys FS, path string, limit int64) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than such a file holds (%d)", path, size, limit)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// rebuildIndexes scans a sealed segment and rewrites its index files.
func rebuildIndexes(fsys FS, log *slog.Logger, s *segment, data []byte, next int64, interval int, why error) (indexes, error) {
	idx := newIndexes()
	stop, _ := scanBatches(data, 0, s.base, func(pos int, h *BatchHeader) error {
		idx.add(s.base, pos, h, interval)
		return nil
	})
	if !stop.Clean || stop.Pos != len(data) || stop.Next != next {
		why := stop.Why
		if why == "" {
			why = fmt.Sprintf("batches end at position %d (offset %d), the file at %d (next segment at offset %d)", stop.Pos, stop.Next, len(data), next)
		}
		return idx, &CorruptionError{Path: s.path, Offset: stop.Next, Position: int64(stop.Pos), Why: why}
	}
	idx.seal()
	if err := writeIndexFiles(fsys, s, &idx); err != nil {
		return idx, err
	}
	what := "missing"
	if !errors.Is(why, fs.ErrNotExist) {
		what = "inconsistent"
	}
	log.Info("rebuilt segment indexes", "file", filepath.Base(s.path), "reason", what, "detail", why.Error(), "offset_entries", len(idx.offsets), "time_entries", len(idx.times))
	return idx, nil
}

// loadIndexes returns a mapped sealed segment's indexes, rebuilding them if
// their files are damaged.
func loadIndexes(fsys FS, log *slog.Logger, s *segment, data []byte, next int64, interval int) (indexes, error) {
	idx, err := readIndexFiles(fsys, s, next, int64(len(data)))
	if err == nil {
		return idx, nil
	}
	return rebuildIndexes(fsys, log, s, data, next, interval, err)
}

// writeIndexFiles writes and syncs a sealed segment's index files.
func writeIndexFiles(fsys FS, s *segment, idx *indexes) error {
	for _, w := range []struct {
		path string
		data []byte
	}{{s.indexPath(), idx.encodeOffsets()}, {s.timeIndexPath(), idx.encodeTimes()}} {
		f, err := fsys.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("segment: write index: %w", err)
		}
		_, err = f.WriteAt(w.data, 0)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("segment: write index %s: %w", w.path, err)
		}
	}
	return nil
}

// openActive maps the last segment and recovers it: every batch is
// CRC-checked; the log ends at the first position that does not hold a
// valid batch. Damage there is corruption if it lies before the recovery
// point, and a torn tail (truncated and zeroed) if after. With cleanTail
// and the recovery point exactly there, the bytes past it are not read
// (the log was closed there, nothing was written after): reading a
// preallocated tail took 8 ms a partition. It says whether it trusted the
// recovery point so.
func (l *Log) openActive(rp recoveryPoint, rpOK, cleanTail bool) (trusted bool, err error) {
	s := l.active()
	f, err := l.fs.OpenFile(s.path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = l.fs.OpenFile(s.path, osRDWRCreate, 0o644)
		if err == nil && len(l.dirsUnsynced) == 0 {
			err = l.fs.SyncDir(l.dir)
		}
	}
	if err != nil {
		return false, fmt.Errorf("segment: open %s: %w", s.path, err)
	}
	fileSize, err := f.Size()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("segment: stat %s: %w", s.path, err)
	}
	mapSize := max(l.cfg.SegmentBytes, fileSize)
	m, err := f.Map(int(mapSize), l.cfg.MmapWrites)
	if err != nil {
		f.Close()
		return false, err
	}
	a := &activeFile{f: f, m: m, buf: m.Bytes(), mmapWrites: l.cfg.MmapWrites, idx: newIndexes(), allocated: fileSize, rolledAt: time.Now()}
	s.active = a
	recovered := false
	defer func() {
		if !recovered { // the open fails: nothing of the file stays open
			m.Unmap()
			f.Close()
			s.active = nil
		}
	}()
	data := a.buf[:fileSize]
	stop, err := scanBatchesParallel(data, 0, s.base, f, func(pos int, h *BatchHeader) {
		a.idx.add(s.base, pos, h, l.cfg.IndexIntervalBytes)
	})
	if err != nil {
		return false, fmt.Errorf("segment: recover %s: %w", s.path, err)
	}
	trusted = cleanTail && stop.Clean && rpOK && rp.base == s.base && rp.pos == int64(stop.Pos)
	garbage := 0
	if !trusted {
		garbage = lastNonZero(data[stop.Pos:])
	}
	if !stop.Clean || garbage > 0 {
		why := stop.Why
		if why == "" {
			why = "zeroed bytes followed by data"
		}
		synced := int64(0)
		if rpOK && rp.base == s.base {
			synced = rp.pos
		} else if rpOK && rp.base > s.base {
			synced = fileSize + 1 // the point lies in a later segment: all of this one was synced
		}
		if int64(stop.Pos) < synced {
			return false, &CorruptionError{Path: s.path, Offset: stop.Next, Position: int64(stop.Pos), Why: why}
		}
		err := writeZeros(f, int64(stop.Pos), int64(stop.Pos+garbage))
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return false, fmt.Errorf("segment: sync %s after truncating its torn tail: %w", s.path, err)
		}
		l.log.Warn("truncated torn tail", "file", filepath.Base(s.path), "position", stop.Pos, "offset", stop.Next, "bytes", garbage, "reason", why)
	}
	s.size, s.next, s.maxTs = int64(stop.Pos), stop.Next, a.idx.maxTs
	a.synced = s.size
	if s.size > 0 {
		l.log.Debug("recovered active segment", "file", filepath.Base(s.path), "bytes", s.size, "next_offset", s.next)
	}
	recovered = true
	return trusted, nil
}
