// Package segmenttest holds test doubles for the segment package: a
// crashable in-memory file system and builders of record batches. It is
// imported by tests only.
package segmenttest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/chronik-stream/chronik/segment"
)

// ErrInjected is the error of an injected failure.
var ErrInjected = errors.New("segmenttest: injected I/O error")

const pageSize = 4096

// MemFS is an in-memory segment.FS that models what survives a crash:
// file contents become durable on Sync, directory entries on SyncDir. Crash
// throws away everything else (or, given a random source, keeps a random
// subset of the unsynced pages, as kernel writeback may have).
type MemFS struct {
	mu sync.Mutex
	// names are the current directory entries; durable the synced ones.
	names   map[string]*inode
	durable map[string]*inode
	dirs    map[string]bool
	// moved are directory renames not yet durable (their parent was not
	// synced since), oldest first: a crash undoes them.
	moved []dirMove

	crashed    bool // every call fails: this is the machine before a crash
	failSyncs  int
	loseFailed bool // a failed sync loses the writes it did not make durable
	failWrites int
	capacity   int64 // 0: unlimited
	written    int64 // bytes passed to WriteAt, for Written
	allocated  int64
	held       chan struct{} // non-nil: file syncs wait until it is closed
	waiting    int           // syncs waiting for held
}

type dirMove struct{ from, to string }

// under reports whether name is dir or lies below it.
func under(name, dir string) bool {
	return name == dir || strings.HasPrefix(name, dir+string(filepath.Separator))
}

// moveTree renames the keys of m below from to below to.
func moveTree[V any](m map[string]V, from, to string) {
	for name, v := range m {
		if under(name, from) {
			delete(m, name)
			m[to+name[len(from):]] = v
		}
	}
}

type inode struct {
	data   []byte // what reads see (the page cache); len is the size
	synced []byte // what survives a crash
	// [dirtyLo, dirtyHi) of data may differ from synced (beyond the size
	// change, which Sync handles itself).
	dirtyLo, dirtyHi int
	// wbErrs counts failed syncs of the file: each handle reports every
	// one that happened while it was open once, on its next Sync, as
	// Linux's errseq does (whichever handle's sync failed).
	wbErrs      int
	mappings    map[*memMapping]struct{}
	openHandles int
}

// NewMemFS returns an empty file system.
func NewMemFS() *MemFS {
	return &MemFS{names: map[string]*inode{}, durable: map[string]*inode{}, dirs: map[string]bool{"/": true, ".": true}}
}

var _ segment.FS = (*MemFS)(nil)

// FailSyncs makes the next n Sync calls fail with ErrInjected. Every other
// handle open on the file reports the failure on its next Sync too, as on
// Linux, where a failed writeback is reported once to each open file.
func (m *MemFS) FailSyncs(n int) { m.mu.Lock(); m.failSyncs = n; m.mu.Unlock() }

// FailedSyncsLoseWrites makes a failed sync lose what it did not make
// durable, as Linux file systems may after a failed writeback: the pages
// are marked clean, reads still see them, a later sync does not write
// them and a crash loses them (the size change kept, the new bytes zero).
func (m *MemFS) FailedSyncsLoseWrites() { m.mu.Lock(); m.loseFailed = true; m.mu.Unlock() }

// HoldSyncs makes file syncs wait, as on a disk slow to make writes
// durable, until release is called (more than once is harmless).
func (m *MemFS) HoldSyncs() (release func()) {
	held := make(chan struct{})
	m.mu.Lock()
	m.held = held
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if m.held == held {
				m.held = nil
			}
			m.mu.Unlock()
			close(held)
		})
	}
}

// HeldSyncs is how many file syncs wait for a HoldSyncs release.
func (m *MemFS) HeldSyncs() int { m.mu.Lock(); defer m.mu.Unlock(); return m.waiting }

// Written returns how many bytes were written with WriteAt so far.
func (m *MemFS) Written() int64 { m.mu.Lock(); defer m.mu.Unlock(); return m.written }

// FailWrites makes the next n WriteAt calls write half and fail.
func (m *MemFS) FailWrites(n int) { m.mu.Lock(); m.failWrites = n; m.mu.Unlock() }

// SetCapacity limits the bytes all files may hold; Allocate and growing
// writes past it fail with ENOSPC. Zero means no limit.
func (m *MemFS) SetCapacity(n int64) { m.mu.Lock(); m.capacity = n; m.mu.Unlock() }

// Allocated is how many bytes the files hold, against the capacity.
func (m *MemFS) Allocated() int64 { m.mu.Lock(); defer m.mu.Unlock(); return m.allocated }

// ErrCrashed is returned by every call on a MemFS after Crash.
var ErrCrashed = errors.New("segmenttest: file system crashed")

// Crash simulates power loss and returns the file system as it comes back.
// This one, and every file and mapping opened from it, fails from now on,
// so code still running from before the crash cannot touch the new one.
// The returned one holds the synced state, plus, when rng is not nil, a
// random choice of the unsynced pages and directory entries, as kernel
// writeback may have left them.
func (m *MemFS) Crash(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
	names := make(map[string]*inode, len(m.durable))
	for name, ino := range m.durable {
		names[name] = ino
	}
	if rng != nil {
		for name, ino := range m.names {
			if _, ok := names[name]; !ok && rng.IntN(2) == 0 {
				names[name] = ino
			}
		}
	}
	n := NewMemFS()
	n.loseFailed = m.loseFailed // the kernel's way, not the machine's state
	for d := range m.dirs {
		n.dirs[d] = true
	}
	for i := len(m.moved) - 1; i >= 0; i-- {
		mv := m.moved[i]
		if rng != nil && rng.IntN(2) == 0 {
			moveTree(names, mv.from, mv.to) // written back before the crash
			continue
		}
		moveTree(n.dirs, mv.to, mv.from)
		for name, ino := range names {
			if under(name, mv.to) && m.durable[name] != ino {
				delete(names, name) // made after the move: no older name to return to
			}
		}
		moveTree(names, mv.to, mv.from)
	}
	fresh := make(map[*inode]*inode)
	for name, ino := range names {
		c, ok := fresh[ino]
		if !ok {
			c = &inode{data: crashContent(ino, rng)}
			c.synced = append([]byte(nil), c.data...)
			fresh[ino] = c
			n.allocated += int64(len(c.data))
		}
		n.names[name] = c
		n.durable[name] = c
	}
	return n
}

// crashContent is what a file holds after a crash: its synced bytes, and
// with rng, some of its unsynced pages and possibly its unsynced size.
func crashContent(ino *inode, rng *rand.Rand) []byte {
	out := append([]byte(nil), ino.synced...)
	if rng == nil {
		return out
	}
	if len(ino.data) > len(out) && rng.IntN(2) == 0 {
		out = append(out, make([]byte, len(ino.data)-len(out))...)
	}
	for p := 0; p < len(out) && p < len(ino.data); p += pageSize {
		end := min(p+pageSize, len(out), len(ino.data))
		if string(out[p:end]) != string(ino.data[p:end]) && rng.IntN(2) == 0 {
			copy(out[p:end], ino.data[p:end])
		}
	}
	return out
}

func clean(name string) string { return filepath.Clean(name) }

// OpenFile implements segment.FS.
func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if m.crashed {
		return nil, &os.PathError{Op: "open", Path: name, Err: ErrCrashed}
	}
	if !m.dirs[filepath.Dir(name)] {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	ino, ok := m.names[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		ino = &inode{}
		m.names[name] = ino
	}
	if flag&os.O_TRUNC != 0 {
		m.allocated -= int64(len(ino.data))
		ino.data = ino.data[:0]
	}
	ino.openHandles++
	return &memFile{fs: m, ino: ino, name: name, writable: flag&(os.O_RDWR|os.O_WRONLY) != 0, seenErrs: ino.wbErrs}, nil
}

// Remove implements segment.FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if m.crashed {
		return &os.PathError{Op: "remove", Path: name, Err: ErrCrashed}
	}
	ino, ok := m.names[name]
	if !ok && m.dirs[name] {
		for other := range m.names {
			if filepath.Dir(other) == name {
				return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	if !ok {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.names, name)
	m.allocated -= int64(len(ino.data))
	return nil
}

// Rename implements segment.FS.
func (m *MemFS) Rename(oldName, newName string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldName, newName = clean(oldName), clean(newName)
	if m.crashed {
		return &os.PathError{Op: "rename", Path: oldName, Err: ErrCrashed}
	}
	ino, ok := m.names[oldName]
	if !ok && m.dirs[oldName] {
		return m.renameDirLocked(oldName, newName)
	}
	if !ok {
		return &os.PathError{Op: "rename", Path: oldName, Err: fs.ErrNotExist}
	}
	if old, ok := m.names[newName]; ok && old != ino {
		m.allocated -= int64(len(old.data))
	}
	delete(m.names, oldName)
	m.names[newName] = ino
	return nil
}

// renameDirLocked renames a directory, as rename(2) does: onto nothing or
// an empty directory. It is durable once the new name's parent is synced
// (the test's renames stay in one parent); until then a crash undoes it.
// Callers hold mu.
func (m *MemFS) renameDirLocked(oldName, newName string) error {
	if !m.dirs[filepath.Dir(newName)] {
		return &os.PathError{Op: "rename", Path: newName, Err: fs.ErrNotExist}
	}
	if _, ok := m.names[newName]; ok {
		return &os.PathError{Op: "rename", Path: newName, Err: syscall.ENOTDIR}
	}
	if m.dirs[newName] {
		for name := range m.names {
			if under(name, newName) {
				return &os.PathError{Op: "rename", Path: newName, Err: syscall.ENOTEMPTY}
			}
		}
		delete(m.dirs, newName)
	}
	moveTree(m.names, oldName, newName)
	moveTree(m.dirs, oldName, newName)
	m.moved = append(m.moved, dirMove{from: oldName, to: newName})
	return nil
}

// ReadDir implements segment.FS.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	if m.crashed {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: ErrCrashed}
	}
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var out []string
	for name := range m.names {
		if filepath.Dir(name) == dir {
			out = append(out, filepath.Base(name))
		}
	}
	for d := range m.dirs {
		if filepath.Dir(d) == dir && d != dir {
			out = append(out, filepath.Base(d))
		}
	}
	sort.Strings(out)
	return out, nil
}

// MkdirAll implements segment.FS. Directories are durable at once.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return &os.PathError{Op: "mkdir", Path: dir, Err: ErrCrashed}
	}
	for d := clean(dir); !m.dirs[d]; d = filepath.Dir(d) {
		m.dirs[d] = true
	}
	return nil
}

// SyncDir implements segment.FS: the directory's entries become durable.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	if m.crashed {
		return &os.PathError{Op: "syncdir", Path: dir, Err: ErrCrashed}
	}
	keep := m.moved[:0]
	for _, mv := range m.moved {
		if filepath.Dir(mv.to) == dir {
			moveTree(m.durable, mv.from, mv.to)
		} else {
			keep = append(keep, mv)
		}
	}
	m.moved = keep
	for name := range m.durable {
		if filepath.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, ino := range m.names {
		if filepath.Dir(name) == dir {
			m.durable[name] = ino
		}
	}
	return nil
}

// Files lists every file name, for tests that look at the layout.
func (m *MemFS) Files() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name := range m.names {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ReadFile returns a copy of a file's current contents.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.names[clean(name)]
	if !ok {
		return nil, &os.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), ino.data...), nil
}

// WriteFile replaces a file's contents, durably, as damage done from outside.
func (m *MemFS) WriteFile(name string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	ino, ok := m.names[name]
	if !ok {
		ino = &inode{}
		m.names[name] = ino
	}
	ino.data = append([]byte(nil), data...)
	ino.synced = append([]byte(nil), data...)
	m.durable[name] = ino
}

type memFile struct {
	fs       *MemFS
	ino      *inode
	name     string
	writable bool
	closed   bool
	seenErrs int // the inode's wbErrs this handle has reported
}

func (f *memFile) check(op string) error {
	if f.fs.crashed {
		return &os.PathError{Op: op, Path: f.name, Err: ErrCrashed}
	}
	if f.closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// growLocked extends the file to size, checking the capacity.
func (f *memFile) growLocked(size int64) error {
	if size <= int64(len(f.ino.data)) {
		return nil
	}
	extra := size - int64(len(f.ino.data))
	if f.fs.capacity > 0 && f.fs.allocated+extra > f.fs.capacity {
		return &os.PathError{Op: "allocate", Path: f.name, Err: syscall.ENOSPC}
	}
	f.fs.allocated += extra
	f.ino.dirty(len(f.ino.data), int(size))
	f.ino.data = append(f.ino.data, make([]byte, extra)...)
	return nil
}

func (ino *inode) dirty(lo, hi int) {
	if ino.dirtyLo == ino.dirtyHi {
		ino.dirtyLo, ino.dirtyHi = lo, hi
		return
	}
	ino.dirtyLo, ino.dirtyHi = min(ino.dirtyLo, lo), max(ino.dirtyHi, hi)
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if !f.writable {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: os.ErrPermission}
	}
	short := false
	if f.fs.failWrites > 0 {
		f.fs.failWrites--
		p, short = p[:len(p)/2], true
	}
	if err := f.growLocked(off + int64(len(p))); err != nil {
		return 0, err
	}
	copy(f.ino.data[off:], p)
	f.fs.written += int64(len(p))
	f.ino.dirty(int(off), int(off)+len(p))
	for mp := range f.ino.mappings {
		if off < int64(len(mp.buf)) {
			copy(mp.buf[off:], p)
		}
	}
	if short {
		return len(p), &os.PathError{Op: "write", Path: f.name, Err: ErrInjected}
	}
	return len(p), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close"); err != nil {
		return err
	}
	f.closed = true
	f.ino.openHandles--
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < int64(len(f.ino.data)) {
		f.fs.allocated -= int64(len(f.ino.data)) - size
		f.ino.data = f.ino.data[:size]
		return nil
	}
	return f.growLocked(size)
}

func (f *memFile) Allocate(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("fallocate"); err != nil {
		return err
	}
	return f.growLocked(off + n)
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	if held := f.fs.held; held != nil {
		f.fs.waiting++
		f.fs.mu.Unlock()
		<-held
		f.fs.mu.Lock()
		f.fs.waiting--
	}
	defer f.fs.mu.Unlock()
	if err := f.check("fdatasync"); err != nil {
		return err
	}
	ino := f.ino
	if f.fs.failSyncs > 0 {
		f.fs.failSyncs--
		ino.wbErrs++
		f.seenErrs = ino.wbErrs
		if f.fs.loseFailed {
			ino.synced = append(ino.synced[:min(len(ino.synced), len(ino.data))], make([]byte, max(len(ino.data)-len(ino.synced), 0))...)
			ino.dirtyLo, ino.dirtyHi = 0, 0
		}
		return &os.PathError{Op: "fdatasync", Path: f.name, Err: ErrInjected}
	}
	if len(ino.synced) > len(ino.data) {
		ino.synced = ino.synced[:len(ino.data)]
	} else {
		ino.synced = append(ino.synced, ino.data[len(ino.synced):]...)
	}
	if lo, hi := ino.dirtyLo, min(ino.dirtyHi, len(ino.data)); lo < hi {
		copy(ino.synced[lo:hi], ino.data[lo:hi])
	}
	ino.dirtyLo, ino.dirtyHi = 0, 0
	if f.seenErrs != ino.wbErrs {
		// Another handle's sync failed since this one last reported:
		// what was written before it may not be durable.
		f.seenErrs = ino.wbErrs
		return &os.PathError{Op: "fdatasync", Path: f.name, Err: ErrInjected}
	}
	return nil
}

func (f *memFile) Map(size int, writable bool) (segment.Mapping, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("mmap"); err != nil {
		return nil, err
	}
	if writable && !f.writable {
		return nil, &os.PathError{Op: "mmap", Path: f.name, Err: os.ErrPermission}
	}
	mp := &memMapping{fs: f.fs, ino: f.ino, name: f.name, buf: make([]byte, size), writable: writable}
	copy(mp.buf, f.ino.data)
	if f.ino.mappings == nil {
		f.ino.mappings = map[*memMapping]struct{}{}
	}
	f.ino.mappings[mp] = struct{}{}
	return mp, nil
}

// memMapping is a private buffer standing for the mapped pages; Dirty
// copies written bytes into the file, as the shared page cache would.
type memMapping struct {
	fs       *MemFS
	ino      *inode
	name     string
	buf      []byte
	writable bool
}

func (mp *memMapping) Bytes() []byte { return mp.buf }

func (mp *memMapping) Dirty(off, n int) {
	mp.fs.mu.Lock()
	defer mp.fs.mu.Unlock()
	if mp.fs.crashed {
		return
	}
	if !mp.writable {
		panic(fmt.Sprintf("segmenttest: write through a read-only mapping of %s", mp.name))
	}
	if off+n > len(mp.ino.data) {
		panic(fmt.Sprintf("segmenttest: SIGBUS: write to [%d, %d) of %s, which holds %d bytes", off, off+n, mp.name, len(mp.ino.data)))
	}
	copy(mp.ino.data[off:off+n], mp.buf[off:off+n])
	mp.ino.dirty(off, off+n)
}

func (mp *memMapping) Unmap() error {
	mp.fs.mu.Lock()
	defer mp.fs.mu.Unlock()
	if mp.buf == nil {
		return errors.New("segmenttest: unmap of an unmapped region")
	}
	delete(mp.ino.mappings, mp)
	mp.buf = nil
	return nil
}
