package segment

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Appended is the handle of one appended batch. Done is closed once the
// batch is durable (or at once for acks=0); Err then says whether it is.
type Appended struct {
	// Base and Last are the offsets of the batch's first and last record.
	Base, Last int64
	// LogAppendTime is the time, in milliseconds, the batch was stamped
	// with (Config.LogAppendTime), or -1.
	LogAppendTime int64

	log  *Log
	end  int64  // offset after the batch
	gen  uint64 // the log's dropGen when written: its data survives only while it is unchanged
	size int
	// unannounced: queued without waking the committer (enqueue); the
	// wait syncs it or wakes it.
	unannounced bool
	done        chan struct{}
	err         error
}

// Done is closed when the append is resolved.
func (a *Appended) Done() <-chan struct{} { return a.done }

// Err is the outcome, valid once Done is closed: nil when durable.
func (a *Appended) Err() error { return a.err }

// Wait blocks until the append is resolved and returns its outcome.
func (a *Appended) Wait() error {
	select {
	case <-a.done:
		return a.err
	default:
	}
	if a.log != nil {
		a.log.c.help(a.unannounced)
	}
	<-a.done
	return a.err
}

func (a *Appended) resolve(err error) {
	a.err = err
	close(a.done)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Append validates batch (one RecordBatch v2), assigns its base offset and
// the partition leader epoch, and writes it to the log. Nothing is written
// when it returns an error. With acks 0 the handle is resolved at once;
// otherwise it resolves when the batch is durable. Reads see the batch once
// it is durable, whatever acks was.
func (l *Log) Append(batch []byte, epoch int32, acks int16) (*Appended, error) {
	return l.appendAt(batch, epoch, acks, -1, -1, 0)
}

// AppendKeeping is Append that leaves at least keep bytes of disk
// allocated after the batch (up to the segment's end), allocating them
// first: on a full disk it fails while Append may still take what is left.
// A log keeps room this way for the writes that must go through when
// nothing else can (the metadata log's deletions).
func (l *Log) AppendKeeping(batch []byte, epoch int32, acks int16, keep int64) (*Appended, error) {
	return l.appendAt(batch, epoch, acks, -1, -1, max(keep, 0))
}

// AppendAt is Append for a writer that knows where the log ends: it writes
// batch only at offset base, and returns ErrEndMoved, writing nothing, if
// the log ends elsewhere. A failed sync drops every write not yet durable
// and later appends take their offsets, so a writer that appends several
// batches and waits for the last alone (one sync covers the others) would
// otherwise not learn that the ones before it were dropped: the last would
// be written where the first was meant to be, and succeed.
func (l *Log) AppendAt(batch []byte, epoch int32, acks int16, base int64) (*Appended, error) {
	if base < 0 {
		return nil, fmt.Errorf("segment: append at negative offset %d", base)
	}
	return l.appendAt(batch, epoch, acks, base, -1, 0)
}

// AppendAfter is Append for a writer whose earlier batch ended at offset
// min: it writes batch only if the log still ends at min or after, and
// returns ErrEndMoved, writing nothing, if a failed sync dropped that
// batch (a producer's next batch must not take the place of its dropped
// one).
func (l *Log) AppendAfter(batch []byte, epoch int32, acks int16, min int64) (*Appended, error) {
	return l.appendAt(batch, epoch, acks, -1, min, 0)
}

// appendAt is Append, AppendAt when base is not negative, AppendAfter
// when min is not negative, and AppendKeeping when keep is positive.
func (l *Log) appendAt(batch []byte, epoch int32, acks int16, base, min, keep int64) (*Appended, error) {
	l.mu.RLock()
	maxBytes, segBytes, check, stamp := l.cfg.MaxMessageBytes, l.cfg.SegmentBytes, l.cfg.CheckRecords, l.cfg.LogAppendTime
	l.mu.RUnlock()
	h, err := ValidateBatch(batch, maxBytes)
	if err == nil && check {
		err = CheckRecords(batch, &h)
	}
	if err != nil {
		return nil, err
	}
	appendTime := int64(-1)
	if stamp {
		appendTime = time.Now().UnixMilli()
		stampAppendTime(batch, &h, appendTime)
	}
	if int64(len(batch)) > segBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds segment.bytes %d", ErrBatchTooLarge, len(batch), segBytes)
	}
	if err := l.c.reserve(); err != nil {
		return nil, err
	}
	req := &Appended{log: l, size: len(batch), done: make(chan struct{}), LogAppendTime: appendTime}
	l.mu.Lock()
	if err := l.appendLocked(batch, &h, epoch, base, min, keep, req); err != nil {
		l.mu.Unlock()
		l.c.unreserve()
		return nil, err
	}
	l.c.enqueue(req, acks != 0 && l.cfg.WritersWait)
	l.mu.Unlock()
	if acks == 0 {
		return &Appended{Base: req.Base, Last: req.Last, LogAppendTime: appendTime, done: closedChan}, nil
	}
	return req, nil
}

func (l *Log) appendLocked(batch []byte, h *BatchHeader, epoch int32, base, min, keep int64, req *Appended) error {
	n := int64(len(batch))
	var seg *segment
	var a *activeFile
	for {
		switch {
		case l.closed:
			return ErrClosed
		case l.failed != nil:
			return fmt.Errorf("%w: %v", ErrLogFailed, l.failed)
		}
		seg = l.active()
		a = seg.active
		full := seg.size > 0 && (seg.size+n > int64(len(a.buf)) || seg.size+n > l.cfg.SegmentBytes || time.Since(a.rolledAt) >= l.cfg.SegmentMs)
		need := roomFor(seg.size, n, keep, int64(len(a.buf)))
		if !full && need <= a.allocated {
			break
		}
		if a.preparing || full && a.busy() {
			// The preparation goroutine is extending (and maybe zeroing)
			// the file, or (before a roll syncs it) the committer syncing
			// it: wait, then look again, since another append may have
			// rolled meanwhile.
			l.idle.Wait()
			continue
		}
		if full {
			if err := l.rollLocked(); err != nil {
				return err
			}
			continue
		}
		if err := l.allocateLocked(seg, need); err != nil {
			l.appendFailed(seg, err)
			return err
		}
	}
	// Checked after the waits above, which let a failed sync drop writes
	// meanwhile.
	switch {
	case base >= 0 && base != l.next:
		return fmt.Errorf("%w: it ends at offset %d, the batch was to go at %d", ErrEndMoved, l.next, base)
	case min >= 0 && l.next < min:
		return fmt.Errorf("%w: it ends at offset %d, before %d, where the writer's last batch ended", ErrEndMoved, l.next, min)
	}
	pos := seg.size
	if err := a.write(batch, pos, l.next, epoch); err != nil {
		err = fmt.Errorf("segment: write to %s: %w", seg.path, err)
		l.appendFailed(seg, err)
		return err
	}
	l.appendSucceeded(seg)
	h.BaseOffset, h.PartitionLeaderEpoch = l.next, epoch
	a.idx.add(seg.base, int(pos), h, l.cfg.IndexIntervalBytes)
	if seg.size == 0 {
		a.rolledAt = time.Now()
	}
	seg.size += n
	if l.avgBatch == 0 {
		// The first batch since open is the estimate: averaging up from
		// zero took six 256 KiB batches, and the steps prepared meanwhile
		// were zeroed as if the batches were small.
		l.avgBatch = n
	} else {
		l.avgBatch += (n - l.avgBatch) / 8
	}
	seg.maxTs = a.idx.maxTs
	req.Base, req.Last = l.next, h.LastOffset()
	l.next = h.LastOffset() + 1
	seg.next = l.next
	req.end, req.gen = l.next, l.dropGen
	// Keep allocation ahead of the writer, off this path.
	if !a.preparing && a.allocated < int64(len(a.buf)) && a.allocated-seg.size < l.stepAt(l.allocSteps-1)/2 {
		select {
		case l.prep <- l:
			a.preparing = true
		default:
		}
	}
	return nil
}

// roomFor is the allocation an append of n bytes at size needs, with keep
// bytes after it up to end (the segment's end).
func roomFor(size, n, keep, end int64) int64 {
	return max(size+n, min(size+n+keep, end))
}

// appendFailed logs an append that could not allocate or write (a full
// disk, an I/O error), and appendSucceeded the first append after such
// lines: the writer is told the error, and without these lines a full
// disk left nothing in the log but one warning of the allocation ahead.
// A run of failures is logged once, then once every appendFailLogEvery
// with the count, and a log that flaps (a nearly full disk takes small
// batches and refuses large ones) writes a line at most that often too.
// Callers hold mu.
func (l *Log) appendFailed(seg *segment, err error) {
	l.c.failedAppends.Add(1)
	l.appendFails++
	if !l.failLogged.IsZero() && time.Since(l.failLogged) < appendFailLogEvery {
		return
	}
	l.failing, l.failLogged = true, time.Now()
	l.log.Error("cannot append: writers are answered with the error until an append succeeds", "file", seg.path, "failed_appends", l.appendFails, "error", err)
}

func (l *Log) appendSucceeded(seg *segment) {
	if l.failing {
		l.log.Info("appending again", "file", seg.path, "failed_appends", l.appendFails)
		l.failing, l.appendFails, l.failLogged = false, 0, time.Now()
	}
}

// appendFailLogEvery bounds how often appendFailed logs.
const appendFailLogEvery = 10 * time.Second

// allocateLocked extends the active segment's allocation to at least need
// bytes, on the append path (when the background preparation fell behind).
// A disk without room for a whole step is asked for need alone: it fills
// up to its last block before appends fail.
func (l *Log) allocateLocked(seg *segment, need int64) error {
	a := seg.active
	end := min(max(need, a.allocated+l.step()), int64(len(a.buf)))
	err := a.f.Allocate(a.allocated, end-a.allocated)
	if errors.Is(err, syscall.ENOSPC) && end > need {
		end = need
		err = a.f.Allocate(a.allocated, end-a.allocated)
	}
	if err != nil {
		return fmt.Errorf("segment: allocate %d bytes for %s: %w", end-a.allocated, seg.path, err)
	}
	a.allocated = end
	l.allocSteps++
	return nil
}

// firstAllocationStep is the first preallocation step of a log opened:
// each step after doubles, up to Config.PreallocateBytes, and none is
// smaller than 8 average batches. A partition that holds a few records
// reserves 64 KiB of disk, not 8 MiB (3,000 of them had reserved 24 GB,
// and a start after a crash read it all); a busy one reaches the full
// step within a few (starting small with batches of 1 MiB made producing
// them about 5% slower).
const firstAllocationStep = 64 << 10

// step is the next preallocation step. Callers hold mu.
func (l *Log) step() int64 { return l.stepAt(l.allocSteps) }

// stepAt is the n-th preallocation step since open (from 0).
func (l *Log) stepAt(n int) int64 {
	return min(l.cfg.PreallocateBytes, max(firstAllocationStep<<min(max(n, 0), 20), 8*l.avgBatch))
}

// prezeroMaxBatch is the average batch size from which allocation steps
// are no longer zeroed. Zeroing makes a small write's sync cheaper (no
// unwritten extent to convert: 4 KiB appends 1.55x faster), but it writes
// every byte twice, and its 1 MiB writes of zeros hold the file's inode
// lock against the appends: with 1 MiB batches it made appends 0.82x as
// fast, and produce of 1 KiB records a third slower.
const prezeroMaxBatch = 128 << 10

// prepare extends the active segment's allocation by one step ahead of the
// writer, zeroing the new blocks first when configured and the batches
// written are small (prezeroMaxBatch). It runs on the store's preparation
// goroutine, never under l.mu while doing I/O.
func (l *Log) prepare() {
	l.mu.Lock()
	seg := l.active()
	a := seg.active
	if l.closed || l.failed != nil {
		a.preparing = false
		l.idle.Broadcast()
		l.mu.Unlock()
		return
	}
	off := a.allocated
	end := min(off+l.step(), int64(len(a.buf)))
	prezero := l.cfg.Prezero && l.avgBatch < prezeroMaxBatch
	f := a.f
	l.mu.Unlock()

	err := error(nil)
	if end > off {
		err = f.Allocate(off, end-off)
		if err == nil && prezero {
			err = l.zeroAhead(seg.path, off, end)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a.preparing = false
	l.idle.Broadcast()
	if err != nil {
		// Once until an allocation succeeds again: on a full disk every
		// append asks again, and the log would fill what is left.
		if !l.allocWarned {
			l.allocWarned = true
			l.log.Warn("cannot allocate ahead; appends allocate what they need until this succeeds", "file", seg.path, "error", err)
		}
		return
	}
	if l.allocWarned {
		l.allocWarned = false
		l.log.Info("allocating ahead again", "file", seg.path)
	}
	a.allocated = max(a.allocated, end)
	l.allocSteps++
}

// zeroAhead writes zeros over [off, end) of the file at path and syncs
// them, through a handle of its own. The sync also writes back appends
// not yet synced, and if that fails Linux reports it once to each open
// handle: through the appends' own handle it would reach this sync alone,
// and the committer's next sync of those appends would succeed although
// they were lost. Through another handle the committer hears of it too and
// drops them (dropUnsyncedLocked).
func (l *Log) zeroAhead(path string, off, end int64) error {
	f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = writeZeros(f, off, end)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// write puts batch at pos with its base offset and leader epoch set: by
// copying into the mapping, or by pwrite of the patched header and then the
// rest (the default, see Config.MmapWrites).
func (a *activeFile) write(batch []byte, pos, base int64, epoch int32) error {
	if a.mmapWrites {
		copy(a.buf[pos:], batch)
		setOffsetAndEpoch(a.buf[pos:], base, epoch)
		a.m.Dirty(int(pos), len(batch))
		return nil
	}
	if len(batch) <= scratchSize {
		// Small batches: one pwrite of a patched copy.
		p := scratchPool.Get().(*[scratchSize]byte)
		defer scratchPool.Put(p)
		buf := p[:len(batch)]
		copy(buf, batch)
		setOffsetAndEpoch(buf, base, epoch)
		_, err := a.f.WriteAt(buf, pos)
		return err
	}
	// Large ones: the patched header, then the rest, without copying it.
	var hdr [BatchHeaderSize]byte
	copy(hdr[:], batch)
	setOffsetAndEpoch(hdr[:], base, epoch)
	if _, err := a.f.WriteAt(hdr[:], pos); err != nil {
		return err
	}
	_, err := a.f.WriteAt(batch[BatchHeaderSize:], pos+BatchHeaderSize)
	return err
}

// scratchSize is the largest batch write copies to patch in one pwrite.
const scratchSize = 16 << 10

var scratchPool = sync.Pool{New: func() any { return new([scratchSize]byte) }}

var zeroBlock = make([]byte, 1<<20)

func writeZeros(f File, off, end int64) error {
	for off < end {
		n := min(end-off, int64(len(zeroBlock)))
		if _, err := f.WriteAt(zeroBlock[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// rollLocked seals the active segment and starts a new one at the log end
// offset. The order makes every crash point recoverable: the old segment's
// data is synced first, then the new file is created and its directory entry
// synced, and only then is the old file trimmed to its length (a crash
// before that leaves trailing zeros, which open trims) and its index files
// written (a crash before that leaves them missing: open rebuilds them).
// Failures before the new segment exists leave the log as it was.
func (l *Log) rollLocked() error {
	old := l.active()
	a := old.active
	err := a.f.Sync()
	for _, d := range l.dirsUnsynced {
		if err == nil {
			err = l.fs.SyncDir(d)
		}
	}
	if err != nil {
		l.dropUnsyncedLocked(old, err)
		return fmt.Errorf("%w: %v", ErrSyncFailed, err)
	}
	l.dirsUnsynced = nil
	a.synced = old.size
	l.advanceDurableLocked(old.next)

	seg := newSegment(l.dir, l.next)
	f, err := l.fs.OpenFile(seg.path, osRDWRCreate|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("segment: create %s: %w", seg.path, err)
	}
	m, err := f.Map(int(l.cfg.SegmentBytes), l.cfg.MmapWrites)
	if err != nil {
		f.Close()
		return err
	}
	if err = l.fs.SyncDir(l.dir); err != nil {
		m.Unmap()
		f.Close()
		return fmt.Errorf("segment: sync directory %s: %w", l.dir, err)
	}
	seg.active = &activeFile{f: f, m: m, buf: m.Bytes(), mmapWrites: l.cfg.MmapWrites, idx: newIndexes(), rolledAt: time.Now()}
	l.segments = append(l.segments, seg)

	a.idx.seal()
	old.maxTs, old.maxTsOffset = a.idx.maxTs, old.base+int64(a.idx.maxTsRel)
	a.m.Unmap()
	err = a.f.Truncate(old.size)
	if err == nil {
		err = a.f.Sync()
	}
	a.f.Close()
	old.active = nil
	if err == nil {
		err = writeIndexFiles(l.fs, old, &a.idx)
	}
	if err != nil {
		// Reads use the in-memory size; open repairs the files.
		l.log.Warn("cannot finish sealing segment, it will be repaired at the next open", "file", old.path, "error", err)
		l.unclean.Store(true)
	}
	l.log.Debug("rolled segment", "sealed", old.path, "bytes", old.size, "new_base", seg.base)
	return nil
}

// failLocked puts the log in the failed state: no more appends.
func (l *Log) failLocked(err error) error {
	if l.failed == nil {
		l.failed = err
		l.unclean.Store(true)
		l.log.Error("log failed, appends refused until it is reopened", "error", err)
	}
	return err
}

// sync makes everything appended so far durable and returns the high
// watermark and the drop generation it holds for. Called by the committer.
func (l *Log) sync() (int64, uint64, error) {
	l.mu.Lock()
	gen0 := l.dropGen
	if l.closed || l.failed != nil {
		defer l.mu.Unlock()
		if l.failed != nil {
			return l.durable, gen0, fmt.Errorf("%w: %v", ErrLogFailed, l.failed)
		}
		return l.durable, gen0, ErrClosed
	}
	seg := l.active()
	a := seg.active
	target, pos, gen := l.next, seg.size, l.dropGen
	durable, dirs := l.durable, l.dirsUnsynced
	if target == durable {
		l.mu.Unlock()
		return target, gen, nil
	}
	turn, fails := a.syncsStarted, a.syncFails
	a.syncsStarted++
	a.inSync = append(a.inSync, turn)
	l.mu.Unlock()

	// Syncs of one log may overlap (the committer keeps two rounds in
	// flight): each covers what was written before it started. A new
	// partition's directories are synced alongside, in parallel.
	dirErrs := make(chan error, len(dirs))
	for _, d := range dirs {
		go func() { dirErrs <- l.fs.SyncDir(d) }()
	}
	ferr := a.f.Sync()
	err := ferr
	for range dirs {
		if derr := <-dirErrs; derr != nil && err == nil {
			err = fmt.Errorf("sync directory: %w", derr)
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	a.inSync = slices.DeleteFunc(a.inSync, func(t uint64) bool { return t == turn })
	if ferr != nil {
		a.syncFails++
		a.failing = append(a.failing, turn)
		defer func() { // decided (runs before the unlock)
			a.failing = slices.DeleteFunc(a.failing, func(t uint64) bool { return t == turn })
			l.idle.Broadcast()
		}()
	}
	l.idle.Broadcast()
	// Decide once the syncs that overlap this one have returned, and the
	// failed ones started before it have dropped what they lost (see
	// activeFile.syncsStarted).
	for returned := a.syncsStarted; slices.ContainsFunc(a.inSync, func(t uint64) bool { return t < returned }) ||
		slices.ContainsFunc(a.failing, func(t uint64) bool { return t < turn }); {
		l.idle.Wait()
	}
	a.syncsDone++
	l.idle.Broadcast()
	if err == nil && a.syncFails != fails {
		err = errors.New("another sync of the file failed meanwhile, and may have been told of a loss of these writes")
	}
	// A failed sync answers with the durable end it started from: the
	// offsets past it may since hold other writes, made durable by later
	// syncs, and with this sync's generation that end would acknowledge
	// the dropped writes it covered.
	switch {
	case l.dropGen != gen:
		// An overlapping sync failed and its data was dropped: what this
		// one covered may be gone. If this fsync failed too, it may have
		// lost writes made since that drop: they go as well (a sync
		// started after this failure waits for this decision, and would
		// otherwise find nothing failed since it started).
		if ferr != nil {
			l.dropUnsyncedLocked(seg, ferr)
		}
		return durable, gen, fmt.Errorf("%w: an overlapping sync failed", ErrSyncFailed)
	case seg.active != a || l.closed:
		// Rolled or closed meanwhile (not while this sync was in flight:
		// rolls and closes wait for it), which synced the whole segment.
		return l.durable, gen, nil
	case err != nil:
		l.dropUnsyncedLocked(seg, err)
		return durable, gen, fmt.Errorf("%w: %v", ErrSyncFailed, err)
	}
	a.synced = max(a.synced, pos)
	if len(dirs) > 0 && len(l.dirsUnsynced) == len(dirs) {
		l.dirsUnsynced = nil
	}
	l.advanceDurableLocked(target)
	return l.durable, gen, nil
}

// dropUnsyncedLocked handles a failed sync: the data after the last synced
// position is no longer claimed. It is zeroed and the log end moves back to
// the high watermark, so later appends overwrite it. If even that cannot be
// made durable the log fails.
func (l *Log) dropUnsyncedLocked(seg *segment, cause error) {
	l.c.failedSyncs.Add(1)
	l.dropGen++
	a := seg.active
	dropped := seg.size - a.synced
	zerr := writeZeros(a.f, a.synced, seg.size)
	seg.size = a.synced
	l.next = l.durable
	seg.next = l.durable
	l.c.failPending(l, fmt.Errorf("%w: %v", ErrSyncFailed, cause))
	// Rebuild the in-memory indexes for what remains.
	a.idx = newIndexes()
	scanBatches(a.buf[:seg.size], 0, seg.base, func(pos int, h *BatchHeader) error {
		a.idx.add(seg.base, pos, h, l.cfg.IndexIntervalBytes)
		return nil
	})
	seg.maxTs = a.idx.maxTs
	l.log.Error("sync failed, unsynced writes dropped", "file", seg.path, "bytes", dropped, "log_end_offset", l.next, "error", cause)
	if zerr == nil {
		zerr = a.f.Sync()
	}
	if zerr != nil {
		l.failLocked(errors.Join(cause, zerr))
	}
}

// maybeCheckpoint records the recovery point if the interval has passed.
func (l *Log) maybeCheckpoint() {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.RLock()
	if l.closed || l.failed != nil || time.Since(l.rpAt) < l.cfg.RecoveryPointInterval {
		l.mu.RUnlock()
		return
	}
	seg := l.active()
	base, pos := seg.base, seg.active.synced
	l.mu.RUnlock()
	if err := l.writeRecoveryPointLocked(base, pos); err != nil {
		l.log.Warn("cannot record recovery point", "error", err)
	}
}
