package segmenttest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TmpfsDir is a temporary directory in memory (/dev/shm), where fdatasync
// costs nothing: a broker there is the same broker without the disk, the
// ceiling that protocol, client and CPU leave it. Skips without tmpfs.
func TmpfsDir(tb testing.TB) string {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		tb.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "chronik-bench")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
