package bench

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// DiskWrite is the baseline for durable writes: it writes total bytes to a
// new file in dir in chunk-sized sequential writes, each followed by
// fdatasync (what a broker that syncs before every acknowledgement can at
// best do with that much data per sync), and removes the file. With
// prezeroed the file is first allocated and zeroed (not timed), as chronik
// prepares its segments, so that a sync need not commit a size change.
func DiskWrite(dir string, total, chunk int, prezeroed bool) (*Result, error) {
	if chunk < 1 || total < chunk || total > 16<<30 {
		return nil, errors.New("bench: disk write needs chunk <= total <= 16 GiB")
	}
	f, err := os.CreateTemp(dir, "disk-baseline-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	name := "disk: sequential write + fdatasync per " + sizeName(chunk)
	if prezeroed {
		name += " into a zeroed file"
		zero := make([]byte, 1<<20)
		for n := 0; n < total; n += len(zero) {
			if _, err := f.Write(zero[:min(len(zero), total-n)]); err != nil {
				return nil, err
			}
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		if _, err := f.Seek(0, 0); err != nil {
			return nil, err
		}
	}
	r := &Result{Workload: name}
	start := time.Now()
	for written := 0; written+chunk <= total; written += chunk {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		r.observe(time.Since(t0))
		r.Ops++
		r.Bytes += int64(chunk)
	}
	r.Elapsed = time.Since(start)
	return r, nil
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
