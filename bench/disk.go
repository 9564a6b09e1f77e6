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

// DiskNewPartition is the floor of a new topic's first acknowledged
// message on this file system, made of raw system calls: for each of n
// operations, the create's 512 B metadata write + fdatasync into a zeroed
// file, then what a partition's first durable record needs as chronik
// lays the partition out: its directory, its segment file (64 KiB
// allocated, 170 B written) and its partition.metadata file (58 B), then
// fdatasync of the segment beside fsync of the partition's directory and
// of the data directory. The directories and files stay until the end,
// as the topics' do.
func DiskNewPartition(dir string, n int) (*Result, error) {
	if n < 1 || n > 1<<20 {
		return nil, errors.New("bench: new partitions: 1 to 2^20 of them")
	}
	meta, err := os.CreateTemp(dir, "disk-metadata-*")
	if err != nil {
		return nil, err
	}
	defer meta.Close()
	if err := prepareFile(meta, n*512, true); err != nil {
		return nil, err
	}
	parent, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	rec, pm := make([]byte, 512), make([]byte, 58)
	r := &Result{Workload: "disk: a metadata write + fdatasync, then a new partition's directory, files and first synced write", lat: latency.New(n)}
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		if _, err := meta.WriteAt(rec, int64(i)*512); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(meta.Fd())); err != nil {
			return nil, err
		}
		if err := newPartition(parent, fmt.Sprintf("%s/p-%d", dir, i), rec[:170], pm); err != nil {
			return nil, err
		}
		r.observe(time.Since(t0))
		r.Ops++
		r.Bytes += 512 + 170
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

func newPartition(parent *os.File, dir string, rec, pm []byte) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	seg, err := os.OpenFile(dir+"/00000000000000000000.log", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer seg.Close()
	if err := os.WriteFile(dir+"/partition.metadata", pm, 0o644); err != nil {
		return err
	}
	if err := unix.Fallocate(int(seg.Fd()), 0, 0, 64<<10); err != nil {
		return err
	}
	if _, err := seg.WriteAt(rec, 0); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = unix.Fdatasync(int(seg.Fd())) })
	wg.Go(func() { errs[1] = d.Sync() })
	errs[2] = parent.Sync()
	wg.Wait()
	return errors.Join(errs[:]...)
}
