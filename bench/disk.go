package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/internal/latency"
)

// DiskWrite is the baseline for durable writes: it writes total bytes in
// rounds of one chunk-sized sequential write to each of files new files in
// dir, then fdatasync of every file (in parallel), which is what a broker
// that syncs before every acknowledgement can at best do with that much
// data per sync and that many partitions; it removes the files after. With
// prezeroed the files are first zeroed (not timed), as chronik prepares
// segments for small batches, so that a sync commits no metadata; without
// it they are allocated ahead with fallocate, as chronik does for large
// batches.
func DiskWrite(dir string, total, chunk, files int, prezeroed bool) (*Result, error) {
	if chunk < 1 || files < 1 || files > 64 || total < chunk*files || total > 16<<30 {
		return nil, errors.New("bench: disk write needs 1 to 64 files and chunk * files <= total <= 16 GiB")
	}
	perFile := total / files / chunk * chunk
	fs := make([]*os.File, files)
	for i := range fs {
		f, err := os.CreateTemp(dir, "disk-baseline-*")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		fs[i] = f
		if err := prepareFile(f, perFile, prezeroed); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	name := "disk: sequential write + fdatasync per " + sizeName(chunk)
	if files > 1 {
		name = fmt.Sprintf("disk: sequential write of %s to each of %d files, then fdatasync of each", sizeName(chunk), files)
	}
	if prezeroed {
		name += " (zeroed files)"
	}
	r := &Result{Workload: name, lat: latency.New(perFile / chunk)}
	errs := make([]error, files)
	start := time.Now()
	for off := int64(0); off+int64(chunk) <= int64(perFile); off += int64(chunk) {
		t0 := time.Now()
		for _, f := range fs {
			if _, err := f.WriteAt(buf, off); err != nil {
				return nil, err
			}
		}
		if files == 1 {
			errs[0] = unix.Fdatasync(int(fs[0].Fd()))
		} else {
			var wg sync.WaitGroup
			for i, f := range fs {
				wg.Go(func() { errs[i] = unix.Fdatasync(int(f.Fd())) })
			}
			wg.Wait()
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		r.observe(time.Since(t0))
		r.Ops++
		r.Bytes += int64(chunk * files)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// prepareFile zeroes size bytes of f and syncs them, or allocates them.
func prepareFile(f *os.File, size int, zeroed bool) error {
	if !zeroed {
		return unix.Fallocate(int(f.Fd()), 0, 0, int64(size))
	}
	zero := make([]byte, 1<<20)
	for n := 0; n < size; n += len(zero) {
		if _, err := f.Write(zero[:min(len(zero), size-n)]); err != nil {
			return err
		}
	}
	return f.Sync()
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}
