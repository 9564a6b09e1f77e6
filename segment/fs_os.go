package segment

import (
	"fmt"
	"os"
	"sort"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// OSFS is the operating system's file system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := openFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// openFile opens a regular file or directory as os.OpenFile does, but
// wraps the descriptor with os.NewFile: os.OpenFile offers every file to
// the network poller, which refuses regular files, five system calls more
// per open (BenchmarkOpenFile).
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldName, newName string) error { return os.Rename(oldName, newName) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct{ f *os.File }

func (o osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Close() error                             { return o.f.Close() }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }

func (o osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// control runs fn on the descriptor while holding a reference to it, so a
// concurrent Close waits rather than recycling the descriptor.
func (o osFile) control(op string, fn func(fd int) error) error {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	if opErr != nil {
		return &os.PathError{Op: op, Path: o.f.Name(), Err: opErr}
	}
	return nil
}

func (o osFile) Sync() error {
	return o.control("fdatasync", unix.Fdatasync)
}

func (o osFile) Allocate(off, n int64) error {
	return o.control("fallocate", func(fd int) error {
		for {
			err := unix.Fallocate(fd, 0, off, n)
			if err != unix.EINTR {
				return err
			}
		}
	})
}

func (o osFile) Map(size int, writable bool) (Mapping, error) {
	prot := mmap.RDONLY
	if writable {
		prot = mmap.RDWR
	}
	m, err := mmap.MapRegion(o.f, size, prot, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("mmap %s (%d bytes): %w", o.f.Name(), size, err)
	}
	return osMapping{m}, nil
}

type osMapping struct{ m mmap.MMap }

func (m osMapping) Bytes() []byte  { return m.m }
func (m osMapping) Unmap() error   { return m.m.Unmap() }
func (m osMapping) Dirty(int, int) {}
