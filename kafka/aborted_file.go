package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"

	"github.com/chronik-stream/chronik/segment"
)

// The aborted-txns file of a partition directory keeps its aborted
// transactions for read_committed reads of any age (the producer state is
// rebuilt from the last producer expiration's worth of the log only). An
// abort is appended, and synced, once its marker is durable; a crash
// between the two leaves it out, and the rebuild at open, which reads the
// markers of that window, finds it again. One whose marker a crash lost is
// dropped at open (its last offset is past the log's end). The file is
// rewritten without the aborts below the log start once they are most of it.
//
// Format (part of the on-disk format):
//
//	magic "CKAT" | version uint32 (1)
//	then per abort: producer id, first offset, last offset int64 | CRC-32C of those 24 bytes uint32
//
// A damaged last entry is a torn append and is dropped; a damaged entry
// with entries after it is corruption, and the partition does not open.
const (
	abortedTxnsFile  = "aborted-txns"
	abortedTxnsMagic = "CKAT"
	abortedHeader    = 8
	abortedEntrySize = 28
	// maxAbortedFile bounds the file read at open: 9.6 million aborts
	// above the log start.
	maxAbortedFile = 256 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

func appendAbortedEntry(dst []byte, a abortedTxn) []byte {
	n := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.pid))
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.first))
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.last))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[n:], crc32c))
}

func encodeAborted(list []abortedTxn) []byte {
	b := make([]byte, 0, abortedHeader+len(list)*abortedEntrySize)
	b = append(b, abortedTxnsMagic...)
	b = binary.BigEndian.AppendUint32(b, 1)
	for _, a := range list {
		b = appendAbortedEntry(b, a)
	}
	return b
}

// decodeAborted returns the aborts in b and the length of its valid
// prefix (less than len(b) after a torn append). ok is false for a file
// that is not one, or damaged before its last entry.
func decodeAborted(b []byte) (list []abortedTxn, valid int, ok bool) {
	if len(b) < abortedHeader || string(b[:4]) != abortedTxnsMagic || binary.BigEndian.Uint32(b[4:]) != 1 {
		return nil, 0, false
	}
	pos := abortedHeader
	for ; pos+abortedEntrySize <= len(b); pos += abortedEntrySize {
		e := b[pos : pos+abortedEntrySize]
		a := abortedTxn{pid: int64(binary.BigEndian.Uint64(e)), first: int64(binary.BigEndian.Uint64(e[8:])), last: int64(binary.BigEndian.Uint64(e[16:]))}
		if binary.BigEndian.Uint32(e[24:]) != crc32.Checksum(e[:24], crc32c) || a.first > a.last || a.first < 0 {
			if pos+2*abortedEntrySize <= len(b) {
				return nil, 0, false // not the last entry: corruption
			}
			return list, pos, true
		}
		list = append(list, a)
	}
	return list, pos, true
}

// loadAborted adds a partition's aborted-txns file to the aborted list
// the rebuild found, keeping the transactions whose marker is in the log,
// and writes the file again if the rebuild found one it lacked, it holds
// one whose marker is gone, or its last append was torn. A damaged file
// is an error: serving aborted records to read_committed consumers would
// be wrong.
func (b *Broker) loadAborted(part *partition) error {
	path := b.partitionPath(part.topic, part.p, abortedTxnsFile)
	data, err := segment.ReadFile(b.store.FS(), path, maxAbortedFile)
	var list []abortedTxn
	valid := 0
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		var ok bool
		if list, valid, ok = decodeAborted(data); !ok {
			return fmt.Errorf("%s is damaged (%d bytes): remove it to serve the partition, and the aborted transactions in it to read_committed consumers", path, len(data))
		}
	}
	ps, end := part.producers, part.log.EndOffset()
	kept := 0
	for _, a := range list {
		if a.last < end {
			ps.addAborted(a)
			kept++
		}
	}
	ps.fileMu.Lock()
	defer ps.fileMu.Unlock()
	if data != nil && valid == len(data) && kept == len(list) && len(*ps.aborted.Load()) == kept {
		ps.fileSize = int64(valid)
		return nil
	}
	if data == nil && len(*ps.aborted.Load()) == 0 {
		return nil
	}
	return b.rewriteAbortedLocked(part)
}

// saveAborted records, durably, the abort whose marker is at marker, if
// the transaction had batches in the partition: appended to the file, or
// the file rewritten when there is none yet or most of it lies below the
// log start.
func (b *Broker) saveAborted(part *partition, marker int64) error {
	ps := part.producers
	ps.fileMu.Lock()
	defer ps.fileMu.Unlock()
	list := *ps.aborted.Load()
	var entry *abortedTxn
	below := 0
	start := part.log.StartOffset()
	for i := range list {
		if list[i].last == marker {
			entry = &list[i]
		}
		if list[i].last < start {
			below++
		}
	}
	switch {
	case entry == nil:
		return nil
	case ps.fileSize == 0 || below > len(list)/2:
		return b.rewriteAbortedLocked(part)
	}
	path := b.partitionPath(part.topic, part.p, abortedTxnsFile)
	f, err := b.store.FS().OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(appendAbortedEntry(nil, *entry), ps.fileSize)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	ps.fileSize += abortedEntrySize
	return nil
}

// rewriteAbortedLocked replaces the file with the aborts at or above the
// log start, which are all memory keeps from then on. The caller holds
// fileMu.
func (b *Broker) rewriteAbortedLocked(part *partition) error {
	ps := part.producers
	start := part.log.StartOffset()
	ps.mu.Lock()
	var keep []abortedTxn
	for _, a := range *ps.aborted.Load() {
		if a.last >= start {
			keep = append(keep, a)
		}
	}
	ps.aborted.Store(&keep)
	ps.mu.Unlock()
	data := encodeAborted(keep)
	path := b.partitionPath(part.topic, part.p, abortedTxnsFile)
	if err := segment.ReplaceFile(b.store.FS(), path, path+".tmp", data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ps.fileSize = int64(len(data))
	return nil
}
