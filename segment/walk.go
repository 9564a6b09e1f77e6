package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Walk says what WalkBatches reports to whom.
type Walk struct {
	// From and To bound the offsets of the batches passed to Batch; To < 0
	// means no upper bound.
	From, To int64
	// File is called as each .log file is opened.
	File func(path string, size int64)
	// Batch is called for every batch in [From, To], in offset order; b is
	// valid only during the call. An error stops the walk.
	Batch func(b *FoundBatch) error
	// Damage is called where a file is not what it should be.
	Damage func(Damage)
	// Progress is called as bytes are read, with the total.
	Progress func(done, total int64)
}

// FoundBatch is one batch met by WalkBatches.
type FoundBatch struct {
	File     string
	Position int
	Header   BatchHeader
	Bytes    []byte // the whole batch, valid only during the callback
	CRCOK    bool
}

// WalkBatches reads the .log files of a partition directory (or one .log
// file) read-only, without a lock, and reports each batch and each place
// of damage. It goes on past a batch with a bad CRC and stops reading a
// file where its structure is lost.
func WalkBatches(path string, w Walk) error {
	files, err := logFiles(path)
	if err != nil {
		return err
	}
	var total, done int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	wk := &walker{w: w, next: -1}
	for _, f := range files {
		size, err := wk.file(f, func(n int64) {
			if w.Progress != nil {
				w.Progress(done+n, total)
			}
		})
		if err != nil {
			return err
		}
		done += size
		if wk.stopped {
			break
		}
	}
	return nil
}

type walker struct {
	w       Walk
	next    int64 // the offset expected next, -1 before the first batch
	stopped bool
}

func (k *walker) damage(path string, pos int, why string) {
	if k.w.Damage != nil {
		k.w.Damage(Damage{File: path, Position: int64(pos), Offset: k.next, Why: why})
	}
}

func (k *walker) file(path string, progress func(int64)) (int64, error) {
	f, err := OSFS{}.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil || size == 0 {
		return 0, err
	}
	m, err := f.Map(int(size), false)
	if err != nil {
		return 0, err
	}
	defer m.Unmap()
	data := m.Bytes()
	if k.w.File != nil {
		k.w.File(path, size)
	}
	pos := 0
	for pos < len(data) {
		progress(int64(pos))
		rest := data[pos:]
		if len(rest) < BatchHeaderSize || AllZero(rest[:BatchHeaderSize]) {
			if lastNonZero(rest) != 0 {
				k.damage(path, pos, "zeroed or short bytes followed by data (a torn tail: the broker truncates it at start-up)")
			}
			break
		}
		h, _ := ParseHeader(rest)
		if h.Size() < BatchHeaderSize || h.Size() > len(rest) {
			k.damage(path, pos, fmt.Sprintf("batch length %d does not fit (%d bytes left): the rest of the file cannot be read", h.Length, len(rest)))
			break
		}
		batch := rest[:h.Size()]
		_, verr := ValidateBatch(batch, 0)
		if k.next >= 0 && h.BaseOffset != k.next {
			k.damage(path, pos, fmt.Sprintf("offsets jump from %d to %d", k.next, h.BaseOffset))
		}
		if verr != nil {
			k.damage(path, pos, verr.Error())
		}
		k.next = h.LastOffset() + 1
		if h.LastOffset() >= k.w.From && (k.w.To < 0 || h.BaseOffset <= k.w.To) && k.w.Batch != nil {
			if err := k.w.Batch(&FoundBatch{File: path, Position: pos, Header: h, Bytes: batch, CRCOK: verr == nil}); err != nil {
				return size, err
			}
		}
		pos += h.Size()
		if k.w.To >= 0 && h.LastOffset() >= k.w.To {
			k.stopped = true
			break
		}
	}
	progress(size)
	return size, nil
}

// logFiles lists the .log files a dump of path covers, in offset order.
func logFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if !st.IsDir() {
		if !strings.HasSuffix(path, logSuffix) {
			return nil, fmt.Errorf("%s is not a segment .log file: give a partition directory or a NNNNNNNNNNNNNNNNNNNN.log file", path)
		}
		return []string{path}, nil
	}
	names, err := OSFS{}.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			out = append(out, filepath.Join(path, n))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no segment files (NNNNNNNNNNNNNNNNNNNN.log): is it a partition directory such as <data-dir>/orders-0?", path)
	}
	return out, nil
}
