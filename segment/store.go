package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/loglimit"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// FS is the file system; nil means the real one (OSFS), in which case the
	// data directory is locked against other processes.
	FS FS
	// Profile bounds the group committer; the zero value means ProfileLow.
	Profile Profile
	// MaxMappedSegments caps the sealed segments mapped at once.
	MaxMappedSegments int
	// RetentionCheckInterval is how often retention runs over every log
	// (Kafka's log.retention.check.interval.ms); zero means 5 minutes,
	// negative means never (call Log.Retention yourself).
	RetentionCheckInterval time.Duration
	// Logger receives recovery, retention and failure messages.
	Logger *slog.Logger
	// Spares is how many new partition directories are kept made ahead
	// (see spare.go): a partition opened for the first time with
	// OpenWithSpare takes one instead of creating its directory and
	// files. Zero means none. The file system must rename directories
	// (OSFS and segmenttest.MemFS do); a spare it cannot rename is
	// dropped.
	Spares int
	// SpareFiles are empty files each spare holds beside its first
	// segment: those the store's user writes into every new partition
	// (the broker's partition.metadata), which are then not created on
	// the first message's way either.
	SpareFiles []string
}

// Store is a data directory of partition logs sharing one group committer,
// one mapping cache and one preallocation goroutine.
type Store struct {
	dir   string
	fs    FS
	lock  *DirLock
	log   *slog.Logger
	c     *committer
	cache *mapCache
	prep  chan *Log
	stop  chan struct{}
	wg    sync.WaitGroup

	// mu guards logs, opening and closed; it is not held across I/O, so
	// that opening (recovering) one partition does not hold up others.
	mu      sync.Mutex
	logs    map[string]*Log
	opening map[string]*openCall // logs being opened, by name
	closed  bool

	// dirs are the entries of the data directory that may be partition
	// directories: those listed at open and those Open made since, each
	// with the number of Opens begun, so that Remove of a partition that
	// was never on disk (a topic being created) costs no system call.
	dirs map[string]int
	// cleanTails are the partitions the last stop left clean
	// (cleanShutdownFile was there), until each is first opened: from then
	// on its tail is no longer known. Empty after an unclean stop.
	cleanTails map[string]bool
	// unclean is set when a log fails or does not close cleanly: Close
	// then does not mark the stop clean.
	unclean atomic.Bool
	// spares are the partition directories made ahead; nil without.
	spares *spares
	// limit bounds the lines that every partition would write alike.
	limit *loglimit.Limiter
}

// cleanShutdownFile marks a data directory whose logs were all closed
// cleanly, each synced with its recovery point at its end (Kafka's
// .kafka_cleanShutdown): a log opened after it trusts that point and does
// not read the preallocated bytes past it for a torn tail. It is removed,
// durably, when the store opens, before any log is.
const cleanShutdownFile = "clean-shutdown"

// openCall is one log being opened; Opens of the same log meanwhile wait
// for done and share l and err.
type openCall struct {
	done chan struct{}
	l    *Log
	err  error
}

// OpenStore opens the data directory dir.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	fsys := opts.FS
	var lock *DirLock
	if fsys == nil {
		fsys = OSFS{}
		l, err := LockDir(dir)
		if err != nil {
			return nil, err
		}
		lock = l
	} else if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment: create data directory: %w", err)
	}
	if opts.Profile.Name == "" {
		opts.Profile = ProfileLow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		dir: dir, fs: fsys, lock: lock, log: opts.Logger, limit: loglimit.New(10 * time.Second),
		c:       newCommitter(opts.Profile),
		cache:   newMapCache(fsys, opts.MaxMappedSegments, opts.Logger),
		prep:    make(chan *Log, 1024),
		stop:    make(chan struct{}),
		logs:    make(map[string]*Log),
		opening: make(map[string]*openCall),
	}
	marked, err := takeCleanShutdownMark(fsys, dir)
	if err == nil {
		s.dirs, err = listDir(fsys, dir)
	}
	if err == nil {
		err = removeSpares(fsys, dir, s.dirs)
	}
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	if marked {
		s.cleanTails = make(map[string]bool, len(s.dirs))
		for name := range s.dirs {
			s.cleanTails[name] = true
		}
	}
	s.wg.Go(s.prepareLoop)
	if opts.Spares > 0 {
		s.spares = &spares{fs: fsys, dir: dir, files: opts.SpareFiles, want: opts.Spares, log: opts.Logger, kick: make(chan struct{}, 1)}
		s.wg.Go(func() { s.spares.run(s.stop) })
	}
	if opts.RetentionCheckInterval >= 0 {
		every := opts.RetentionCheckInterval
		if every == 0 {
			every = 5 * time.Minute
		}
		s.wg.Go(func() { s.retentionLoop(every) })
	}
	return s, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// FS is the store's file system.
func (s *Store) FS() FS { return s.fs }

// PartitionDir is the directory name of a topic partition: <topic>-<partition>.
func PartitionDir(topic string, partition int32) string {
	return topic + "-" + strconv.FormatInt(int64(partition), 10)
}

// Open opens (creating if needed) the log of a topic partition. Logs are
// opened one at a time each, but several at once.
func (s *Store) Open(topic string, partition int32, cfg Config) (*Log, error) {
	return s.open(topic, partition, cfg, false)
}

// OpenWithSpare is Open, except that a partition never on disk takes one
// of the spare directories (StoreOptions.Spares) if one is ready, with
// the files it holds (StoreOptions.SpareFiles): for the partitions a
// client's first message may be waiting for, not for a store's own.
func (s *Store) OpenWithSpare(topic string, partition int32, cfg Config) (*Log, error) {
	return s.open(topic, partition, cfg, true)
}

// OnDisk reports whether a partition's directory may be on disk: it was
// there when the store opened, or the partition was opened since. One
// never on disk holds nothing to recover.
func (s *Store) OnDisk(topic string, partition int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.dirs[PartitionDir(topic, partition)]
	return ok
}

func (s *Store) open(topic string, partition int32, cfg Config, useSpare bool) (*Log, error) {
	name := PartitionDir(topic, partition)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if l, ok := s.logs[name]; ok {
		s.mu.Unlock()
		return l, nil
	}
	if c := s.opening[name]; c != nil {
		s.mu.Unlock()
		<-c.done
		return c.l, c.err
	}
	c := &openCall{done: make(chan struct{})}
	s.opening[name] = c
	s.mu.Unlock()
	defer close(c.done)

	s.mu.Lock()
	cleanTail := s.cleanTails[name]
	delete(s.cleanTails, name)
	_, onDisk := s.dirs[name]
	s.dirs[name]++ // before the directory is made
	s.mu.Unlock()
	l, err := openLog(s, filepath.Join(s.dir, name), cfg, cleanTail, useSpare && !onDisk)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.opening, name)
	if err != nil {
		c.err = err
		return nil, err
	}
	c.l = l
	s.logs[name] = l
	return l, nil
}

// waitOpeningLocked waits, releasing mu meanwhile, until no open of name
// is in progress. Callers hold mu.
func (s *Store) waitOpeningLocked(name string) {
	for c := s.opening[name]; c != nil; c = s.opening[name] {
		s.mu.Unlock()
		<-c.done
		s.mu.Lock()
	}
}

// Remove closes a partition's log, if open, and deletes its files and
// directory. A partition that does not exist is not an error.
func (s *Store) Remove(topic string, partition int32) error {
	name := PartitionDir(topic, partition)
	s.mu.Lock()
	s.waitOpeningLocked(name)
	l := s.logs[name]
	delete(s.logs, name)
	opens, known := s.dirs[name]
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	if !known {
		return nil // never on disk
	}
	files, err := removeDir(s.fs, filepath.Join(s.dir, name))
	if err != nil {
		return fmt.Errorf("segment: remove %s: %w", name, err)
	}
	if files < 0 {
		s.forgetDir(name, opens)
		return nil
	}
	s.log.Info("removed partition", "partition", name, "files", files)
	if err := s.fs.SyncDir(s.dir); err != nil {
		return err
	}
	s.forgetDir(name, opens)
	return nil
}

// forgetDir drops a removed partition directory from dirs, unless an Open
// began since Remove looked (opens then differs): it may have made it
// again.
func (s *Store) forgetDir(name string, opens int) {
	s.mu.Lock()
	if s.dirs[name] == opens {
		delete(s.dirs, name)
	}
	s.mu.Unlock()
}

// Stats are the group committer's counters.
type Stats struct {
	Syncs, Writes int64
	MappedSegs    int
	// FailedAppends are appends that could not allocate or write (a full
	// disk, an I/O error); FailedSyncs are syncs that failed, whose
	// unsynced writes were dropped.
	FailedAppends, FailedSyncs int64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Syncs: s.c.syncs.Load(), Writes: s.c.writes.Load(), MappedSegs: s.cache.mappedCount(),
		FailedAppends: s.c.failedAppends.Load(), FailedSyncs: s.c.failedSyncs.Load()}
}

func (s *Store) prepareLoop() {
	for {
		select {
		case l := <-s.prep:
			l.prepare()
		case <-s.stop:
			return
		}
	}
}

func (s *Store) retentionLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.mu.Lock()
			logs := make([]*Log, 0, len(s.logs))
			for _, l := range s.logs {
				logs = append(logs, l)
			}
			s.mu.Unlock()
			for _, l := range logs {
				if _, err := l.Retention(now); err != nil && !errors.Is(err, ErrClosed) {
					s.log.Warn("retention failed", "partition", filepath.Base(l.dir), "error", err)
				}
			}
		case <-s.stop:
			return
		}
	}
}

// Close closes every log (syncing it), stops the committer and releases
// the data directory.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Opens in progress finish first (they register their logs), so
	// that every log is closed before the committer stops.
	for len(s.opening) > 0 {
		for name := range s.opening {
			s.waitOpeningLocked(name)
			break
		}
	}
	logs := s.logs
	s.logs = nil
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.c.close()
	close(s.stop)
	s.wg.Wait()
	if len(errs) == 0 && !s.unclean.Load() {
		if err := markCleanShutdown(s.fs, s.dir); err != nil {
			s.log.Warn("cannot mark the stop clean: the next start checks every partition's tail", "error", err)
		}
	}
	if err := s.lock.Unlock(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// takeCleanShutdownMark removes cleanShutdownFile from dir, durably, and
// reports whether it was there: from here on logs may be written, and a
// crash must not leave the mark behind.
func takeCleanShutdownMark(fsys FS, dir string) (bool, error) {
	path := filepath.Join(dir, cleanShutdownFile)
	err := fsys.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return false, fmt.Errorf("segment: remove the clean-shutdown mark %s (remove it by hand if the disk is read-only): %w", path, err)
	}
	return true, nil
}

// listDir returns the entries of the data directory dir.
func listDir(fsys FS, dir string) (map[string]int, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("segment: list data directory: %w", err)
	}
	out := make(map[string]int, len(names))
	for _, name := range names {
		out[name] = 0
	}
	return out, nil
}

// markCleanShutdown writes cleanShutdownFile, durably, once every log is
// closed cleanly.
func markCleanShutdown(fsys FS, dir string) error {
	f, err := fsys.OpenFile(filepath.Join(dir, cleanShutdownFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	return err
}
