package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// The log-start-offset file records a log start offset that a deletion of
// records (Kafka's DeleteRecords) moved past the first segment's base:
// offsets below it are gone for readers even where their segment still
// holds them. It is replaced whole (written to a temporary file, synced,
// renamed, directory synced), so it is either the old value or the new.
//
// Format (part of the on-disk format), 16 bytes:
//
//	magic "CKLS" | offset int64 | CRC-32C of bytes [0,12) uint32
//
// A missing or damaged file means no such offset: the first segment's base
// is the start (a damaged file is reported and the deleted records are
// served again, never data lost).
const (
	startOffsetFile  = "log-start-offset"
	startOffsetSize  = 16
	startOffsetMagic = "CKLS"
)

func encodeStartOffset(offset int64) []byte {
	b := make([]byte, startOffsetSize)
	copy(b, startOffsetMagic)
	binary.BigEndian.PutUint64(b[4:], uint64(offset))
	binary.BigEndian.PutUint32(b[12:], crc32.Checksum(b[:12], crc32c))
	return b
}

// decodeStartOffset returns the offset in b, if b is a valid file.
func decodeStartOffset(b []byte) (int64, bool) {
	if len(b) != startOffsetSize || string(b[:4]) != startOffsetMagic || binary.BigEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], crc32c) {
		return 0, false
	}
	off := int64(binary.BigEndian.Uint64(b[4:]))
	return off, off >= 0
}

// readStartOffset reads dir's log-start-offset file: found is false when
// there is none; an error says it is damaged.
func readStartOffset(fsys FS, dir string) (offset int64, found bool, err error) {
	path := filepath.Join(dir, startOffsetFile)
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	b := make([]byte, startOffsetSize+1)
	n, _ := f.ReadAt(b, 0)
	off, ok := decodeStartOffset(b[:n])
	if !ok {
		return 0, false, fmt.Errorf("segment: %s is damaged (%d bytes): ignored, records deleted before it are served again", path, n)
	}
	return off, true, nil
}

// writeStartOffset replaces dir's log-start-offset file with offset,
// durably.
func writeStartOffset(fsys FS, dir string, offset int64) error {
	path := filepath.Join(dir, startOffsetFile)
	if err := ReplaceFile(fsys, path, path+".tmp", encodeStartOffset(offset)); err != nil {
		return fmt.Errorf("segment: write log start offset: %w", err)
	}
	return nil
}

// DeleteRecordsBefore moves the log start offset to offset (Kafka's
// DeleteRecords): records below it are no longer served, and the sealed
// segments wholly below it are deleted. offset may be at most the high
// watermark (ErrOffsetOutOfRange otherwise); one at or below the start
// changes nothing. It returns the log start offset after, which is durable
// when it returns.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.RLock()
	start, durable, err := l.start, l.durable, l.writableLocked()
	l.mu.RUnlock()
	switch {
	case err != nil:
		return 0, err
	case offset < 0 || offset > durable:
		return 0, fmt.Errorf("%w: cannot delete records before %d: the log holds [%d, %d)", ErrOffsetOutOfRange, offset, start, durable)
	case offset <= start:
		return start, nil
	}
	if err := writeStartOffset(l.fs, l.dir, offset); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err // closed meanwhile: the next open reads the new start
	}
	l.start = max(l.start, offset)
	_, err = l.deleteSegmentsBeforeLocked(l.start)
	return l.start, err
}
