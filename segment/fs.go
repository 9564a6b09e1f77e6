package segment

import (
	"io"
	"os"
	"path/filepath"
)

// FS is all the file-system access the segment package does. OSFS is the
// real one; segmenttest.MemFS can fail a write or a sync and can crash,
// keeping only what was synced.
type FS interface {
	// OpenFile opens a file as os.OpenFile does.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename renames a file, replacing newName if it exists. Like the
	// creation of a file, it is durable after SyncDir.
	Rename(oldName, newName string) error
	// ReadDir lists the names in a directory, sorted.
	ReadDir(dir string) ([]string, error)
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the directory's entries (created and removed files) durable.
	SyncDir(dir string) error
}

// File is an open file. Bytes written with WriteAt or through a writable
// Mapping are durable only after Sync returns nil.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Size is the file's current size.
	Size() (int64, error)
	// Truncate sets the file's size.
	Truncate(size int64) error
	// Allocate reserves disk blocks for [off, off+n), extending the file if
	// needed, so that later writes there cannot fail for lack of space.
	Allocate(off, n int64) error
	// Sync makes the file's data (and the size needed to read it) durable:
	// fdatasync.
	Sync() error
	// Map maps the first size bytes of the file into memory. Touching a
	// mapped byte at or past the file's size is a fault: callers keep the
	// file allocated past every byte they touch.
	Map(size int, writable bool) (Mapping, error)
}

// Mapping is a memory-mapped region of a File.
type Mapping interface {
	// Bytes is the mapped memory; it must not be used after Unmap.
	Bytes() []byte
	// Dirty tells the file system that [off, off+n) of Bytes was written.
	// A real mapping needs nothing (the page cache is shared); the test file
	// system copies the bytes into its model of the file here.
	Dirty(off, n int)
	// Unmap releases the mapping.
	Unmap() error
}

// ReplaceFile makes path hold data, whole or not at all: data is written to
// tmp and synced, tmp renamed over path, and path's directory synced. On
// failure tmp is removed and path is as it was (or, if only the directory
// sync failed, either).
func ReplaceFile(fsys FS, path, tmp string, data []byte) error {
	f, err := fsys.OpenFile(tmp, osRDWRCreate|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		fsys.Remove(tmp)
	}
	return err
}
