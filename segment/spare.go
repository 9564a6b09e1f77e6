package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Spare partition directories (StoreOptions.Spares). A new partition's
// first message used to create its directory, its first segment file and
// the files its user keeps there on its way, and then to wait for the
// first sync to commit them: the inode creations took 0.04 ms each while
// the file system was quiet and 0.25-0.8 ms each for a minute after many
// files had been deleted. A spare is such a directory made ahead, its
// first allocation step written with zeros and synced (the first sync of
// data then commits no block conversion); opening a new partition with
// Store.OpenWithSpare renames one into place, which allocates nothing. Spares live beside the
// partitions as spare~N, a name no partition can have (~ is not allowed
// in topic names); those a stop left behind are removed when the store
// opens, and new ones are made on a goroutine of their own.
const sparePrefix = "spare~"

// refillDelay is how long a taken spare waits to be replaced while others
// are ready. Replaced at once, with a new topic's first message every 20
// ms, that message took 3.4-3.8 ms at the median; 5 ms later, 1.4-1.8 ms
// (alternating runs); back to back, where spares run out, no change.
const refillDelay = 5 * time.Millisecond

type spares struct {
	fs    FS
	dir   string
	files []string
	want  int
	log   *slog.Logger

	seq int // the last spare's number; run's goroutine only

	mu    sync.Mutex
	ready []string      // paths of complete spares
	kick  chan struct{} // capacity 1: "one was taken"
}

func isSpare(name string) bool { return strings.HasPrefix(name, sparePrefix) }

// removeSpares deletes the spares of an earlier process, listed in names
// (the data directory's entries).
func removeSpares(fsys FS, dir string, names map[string]int) error {
	for name := range names {
		if !isSpare(name) {
			continue
		}
		if _, err := removeDir(fsys, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("segment: remove spare partition directory %s: %w", name, err)
		}
		delete(names, name)
	}
	return nil
}

// removeDir deletes a directory of files and returns how many files it
// held, or -1 if it was not there.
func removeDir(fsys FS, dir string) (int, error) {
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	if err := fsys.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	return len(names), nil
}

// take returns a spare's path, if one is ready, and asks for another.
func (p *spares) take() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		return "", false
	}
	path := p.ready[len(p.ready)-1]
	p.ready = p.ready[:len(p.ready)-1]
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return path, true
}

// run keeps want spares ready until stop is closed, replacing a taken one
// refillDelay later unless none is left. After a failure (a full disk) it
// tries again a minute later, or once a spare is taken.
func (p *spares) run(stop <-chan struct{}) {
	warned := false
	for {
		for p.count() < p.want {
			select {
			case <-stop:
				return
			default:
			}
			err := p.prepare()
			if err != nil {
				if !warned { // once until one succeeds: a full disk stays full
					p.log.Warn("cannot prepare a spare partition directory; new partitions make their own", "error", err)
				}
				warned = true
				break
			}
			warned = false
		}
		select {
		case <-p.kick:
			if p.count() > 0 {
				// Not during the first sync of the partition that took
				// the spare: the new spare's entries and data would join
				// it (a burst that took them all gets new ones at once).
				select {
				case <-time.After(refillDelay):
				case <-stop:
					return
				}
			}
		case <-time.After(time.Minute):
		case <-stop:
			return
		}
	}
}

func (p *spares) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// prepare makes one spare: the directory, the first segment with its
// first allocation step zeroed and synced, the empty files, and the
// directory's entries synced.
func (p *spares) prepare() error {
	p.seq++
	path := filepath.Join(p.dir, sparePrefix+strconv.Itoa(p.seq))
	err := p.make(path)
	if err != nil {
		if _, rerr := removeDir(p.fs, path); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	p.mu.Lock()
	p.ready = append(p.ready, path)
	p.mu.Unlock()
	return nil
}

func (p *spares) make(path string) error {
	if err := p.fs.MkdirAll(path, 0o755); err != nil {
		return err
	}
	f, err := p.fs.OpenFile(filepath.Join(path, segmentName(0, logSuffix)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = writeZeros(f, 0, firstAllocationStep)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, name := range p.files {
		f, err := p.fs.OpenFile(filepath.Join(path, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return p.fs.SyncDir(path)
}

// useSpare renames a spare into place as the new partition directory
// dir, if one is ready, and reports whether it did. A spare that cannot be
// renamed is removed; the partition is then made as without spares.
func (s *Store) useSpare(dir string) bool {
	if s.spares == nil {
		return false
	}
	spare, ok := s.spares.take()
	if !ok {
		return false
	}
	if err := s.fs.Rename(spare, dir); err != nil {
		s.log.Warn("cannot use a spare partition directory", "spare", filepath.Base(spare), "partition", filepath.Base(dir), "error", err)
		if _, rerr := removeDir(s.fs, spare); rerr != nil {
			s.log.Warn("cannot remove a spare partition directory", "spare", filepath.Base(spare), "error", rerr)
		}
		return false
	}
	return true
}
