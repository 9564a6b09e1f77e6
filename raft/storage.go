package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/chronik-stream/chronik/segment"
)

// Storage keeps a node's durable state in one write-ahead file, raft.wal:
// records of the hard state, entries (replacing the stored ones from their
// first index on) and snapshots, each length-prefixed and CRC-32C checked,
// synced before Save returns. When the file grows past compactAt it is
// rewritten (temporary file, fsync, rename, directory fsync) to hold just
// the current state.
type Storage struct {
	fs   segment.FS
	path string
	f    segment.File
	size int64
	// allocated is the file's size: past size, zeros allocated ahead
	// (keepRoom), so that saving a vote or a term needs no new blocks of
	// a disk that filled up meanwhile.
	allocated int64
	state     Restored // what the file stands for
	compactAt int64
	// failed is the write or sync that failed: the storage takes nothing
	// more (what the file holds past size is not known to be durable).
	failed error
}

const (
	recHardState = 1
	recEntries   = 2
	recSnapshot  = 3
)

// StorageFile is the name of the storage's file in its directory.
const StorageFile = "raft.wal"

// maxRecordBytes bounds a record: replay takes a longer length for a torn
// tail. Writes never make one (entries go in as many records as they
// need; a snapshot or an entry too large for one is refused). A variable
// for tests.
var maxRecordBytes = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenStorage opens (or creates) the storage in dir on fsys (nil: the
// operating system's) and returns what it holds. A torn record at the end
// (a crash while writing) is cut off.
func OpenStorage(fsys segment.FS, dir string, log *slog.Logger) (*Storage, Restored, error) {
	if fsys == nil {
		fsys = segment.OSFS{}
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, Restored{}, fmt.Errorf("raft: storage: %w", err)
	}
	s := &Storage{fs: fsys, path: filepath.Join(dir, StorageFile), compactAt: 64 << 20}
	f, err := fsys.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, Restored{}, fmt.Errorf("raft: storage: %w", err)
	}
	// The file's name (and its directory's) is durable before anything is
	// saved in it: a vote synced into a file a power loss then takes away
	// would be cast again.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := fsys.SyncDir(d); err != nil {
			f.Close()
			return nil, Restored{}, fmt.Errorf("raft: storage: sync %s: %w", d, err)
		}
	}
	data, err := segment.ReadFile(fsys, s.path, maxFileBytes)
	if err != nil {
		f.Close()
		return nil, Restored{}, fmt.Errorf("raft: storage: %w", err)
	}
	good, why := s.replay(data)
	if good < len(data) && !segment.AllZero(data[good:]) {
		if log != nil {
			log.Warn("raft storage: cutting off a torn tail", "file", s.path, "position", good, "bytes", len(data)-good, "reason", why)
		}
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, Restored{}, fmt.Errorf("raft: storage: truncate %s: %w", s.path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, Restored{}, fmt.Errorf("raft: storage: sync %s: %w", s.path, err)
		}
		data = data[:good]
	}
	s.f, s.size, s.allocated = f, int64(good), int64(len(data))
	s.keepRoom(0)
	return s, s.state, nil
}

// storageRoom is how much of the file is kept allocated past its records.
const storageRoom = 64 << 10

// keepRoom allocates storageRoom more past the records when less than
// half of it (or than next bytes) is left. Best effort: without it a
// write extends the file itself, as on a disk that has no room ahead.
func (s *Storage) keepRoom(next int64) {
	if s.allocated-s.size >= max(storageRoom/2, next) {
		return
	}
	n := max(storageRoom, next)
	if err := s.f.Allocate(s.allocated, n); err == nil {
		s.allocated += n
	}
}

// StorageContents is what a storage file holds, read without changing it.
type StorageContents struct {
	Path  string
	Size  int
	State Restored
	// Good is how many bytes hold whole records; Why says why the bytes
	// after them do not (a torn tail, which OpenStorage cuts off).
	Good int
	Why  string
}

// ReadStorage reads the storage at path (its directory, or the raft.wal
// file in it) on fsys (nil: the operating system's), changing nothing:
// for inspection (chronik log dump).
func ReadStorage(fsys segment.FS, path string) (StorageContents, error) {
	if fsys == nil {
		fsys = segment.OSFS{}
	}
	if filepath.Base(path) != StorageFile {
		path = filepath.Join(path, StorageFile)
	}
	data, err := segment.ReadFile(fsys, path, maxFileBytes)
	if err != nil {
		return StorageContents{}, fmt.Errorf("raft: storage: %w", err)
	}
	s := &Storage{}
	good, why := s.replay(data)
	if segment.AllZero(data[good:]) {
		why = "" // room allocated ahead
	}
	return StorageContents{Path: path, Size: len(data), State: s.state, Good: good, Why: why}, nil
}

// maxFileBytes bounds what OpenStorage reads: the file is rewritten when it
// grows past 64 MiB, by at most one Save's records.
const maxFileBytes = 4 << 30

// replay applies the records of data to s.state and returns how many bytes
// held whole records, and why it stopped before the end.
func (s *Storage) replay(data []byte) (int, string) {
	pos := 0
	for pos < len(data) {
		if len(data)-pos < 9 {
			return pos, "short record header"
		}
		n := int(binary.BigEndian.Uint32(data[pos:]))
		sum := binary.BigEndian.Uint32(data[pos+4:])
		if n < 1 || n > maxRecordBytes || n > len(data)-pos-8 {
			return pos, "bad record length"
		}
		body := data[pos+8 : pos+8+n]
		if crc32.Checksum(body, castagnoli) != sum {
			return pos, "bad record checksum"
		}
		if err := s.apply(body); err != nil {
			return pos, err.Error()
		}
		pos += 8 + n
	}
	return pos, ""
}

func (s *Storage) apply(body []byte) error {
	d := &decoder{b: body[1:]}
	switch body[0] {
	case recHardState:
		s.state.HardState = HardState{Term: d.u64("term"), Vote: int32(d.u32("vote")), Commit: d.u64("commit")}
	case recEntries:
		n := d.count("entry count", 17)
		ents := make([]Entry, n)
		for i := range ents {
			ents[i] = Entry{Term: d.u64("entry term"), Index: d.u64("entry index"), Data: d.bytes("entry data")}
		}
		if d.err == nil {
			return s.putEntries(ents)
		}
	case recSnapshot:
		snap := &Snapshot{Index: d.u64("snapshot index"), Term: d.u64("snapshot term"), Data: d.bytes("snapshot data")}
		if d.err == nil {
			s.putSnapshot(snap)
		}
	default:
		return fmt.Errorf("unknown record kind %d", body[0])
	}
	return d.err
}

func (s *Storage) firstIndex() uint64 {
	if s.state.Snapshot != nil {
		return s.state.Snapshot.Index + 1
	}
	return 1
}

func (s *Storage) putEntries(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	if first < s.firstIndex() {
		// Entries under the snapshot: keep those after it.
		skip := s.firstIndex() - first
		if skip >= uint64(len(ents)) {
			return nil
		}
		ents, first = ents[skip:], s.firstIndex()
	}
	keep := first - s.firstIndex()
	if keep > uint64(len(s.state.Entries)) {
		return fmt.Errorf("entries from %d leave a gap after %d", first, s.firstIndex()+uint64(len(s.state.Entries))-1)
	}
	s.state.Entries = append(s.state.Entries[:keep:keep], ents...)
	return nil
}

func (s *Storage) putSnapshot(snap *Snapshot) {
	var rest []Entry
	for _, e := range s.state.Entries {
		if e.Index > snap.Index {
			rest = append(rest, e)
		}
	}
	if len(rest) > 0 && rest[0].Index != snap.Index+1 {
		rest = nil
	}
	s.state.Snapshot, s.state.Entries = snap, rest
}

func appendRecord(dst []byte, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...)
}

func hardStateRecord(hs HardState) []byte {
	b := []byte{recHardState}
	b = binary.BigEndian.AppendUint64(b, hs.Term)
	b = binary.BigEndian.AppendUint32(b, uint32(hs.Vote))
	return binary.BigEndian.AppendUint64(b, hs.Commit)
}

func snapshotRecord(snap *Snapshot) []byte {
	b := []byte{recSnapshot}
	b = binary.BigEndian.AppendUint64(b, snap.Index)
	b = binary.BigEndian.AppendUint64(b, snap.Term)
	b = binary.AppendUvarint(b, uint64(len(snap.Data)))
	return append(b, snap.Data...)
}

// appendSnapshotRecord appends snap's record, if it fits in one.
func appendSnapshotRecord(dst []byte, snap *Snapshot) ([]byte, error) {
	if err := snapshotFits(snap); err != nil {
		return nil, err
	}
	return appendRecord(dst, snapshotRecord(snap)), nil
}

// snapshotFits says whether snap's record (snapshotRecord) is within
// maxRecordBytes.
func snapshotFits(snap *Snapshot) error {
	var n [binary.MaxVarintLen64]byte
	if 1+16+binary.PutUvarint(n[:], uint64(len(snap.Data)))+len(snap.Data) > maxRecordBytes {
		return fmt.Errorf("raft: storage: a snapshot of %d bytes is larger than a record may be (%d)", len(snap.Data), maxRecordBytes)
	}
	return nil
}

// appendEntriesRecords appends ents as records of at most maxRecordBytes,
// as many as they need.
func appendEntriesRecords(dst []byte, ents []Entry) ([]byte, error) {
	for len(ents) > 0 {
		size, n := 1+binary.MaxVarintLen64, 0
		for ; n < len(ents); n++ {
			e := 16 + binary.MaxVarintLen64 + len(ents[n].Data) // at most
			if size+e > maxRecordBytes {
				break
			}
			size += e
		}
		if n == 0 {
			return nil, fmt.Errorf("raft: storage: entry %d of %d bytes is larger than a record may be (%d)", ents[0].Index, len(ents[0].Data), maxRecordBytes)
		}
		dst = appendRecord(dst, entriesRecord(ents[:n]))
		ents = ents[n:]
	}
	return dst, nil
}

func entriesRecord(ents []Entry) []byte {
	b := []byte{recEntries}
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for _, e := range ents {
		b = binary.BigEndian.AppendUint64(b, e.Term)
		b = binary.BigEndian.AppendUint64(b, e.Index)
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}

// Save makes a Ready's state durable: the hard state, snapshot and entries
// it carries (any may be absent), in one write and one sync.
func (s *Storage) Save(hs *HardState, snap *Snapshot, ents []Entry) error {
	if err := s.refused(); err != nil {
		return err
	}
	var buf []byte
	var err error
	if snap != nil {
		if buf, err = appendSnapshotRecord(buf, snap); err != nil {
			return err
		}
	}
	if buf, err = appendEntriesRecords(buf, ents); err != nil {
		return err
	}
	if snap != nil {
		s.putSnapshot(snap)
	}
	if len(ents) > 0 {
		if err := s.putEntries(ents); err != nil {
			return fmt.Errorf("raft: storage: %w", err)
		}
	}
	if hs != nil {
		buf = appendRecord(buf, hardStateRecord(*hs))
		s.state.HardState = *hs
	}
	if len(buf) == 0 {
		return nil
	}
	if s.size+int64(len(buf)) > s.compactAt {
		return s.fail(s.rewrite())
	}
	s.keepRoom(int64(len(buf)))
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		return s.fail(fmt.Errorf("raft: storage: write: %w", err))
	}
	if err := s.f.Sync(); err != nil {
		return s.fail(fmt.Errorf("raft: storage: sync: %w", err))
	}
	s.size += int64(len(buf))
	s.allocated = max(s.allocated, s.size)
	return nil
}

// refused is why the storage takes no more writes: an earlier one failed.
func (s *Storage) refused() error {
	if s.failed != nil {
		return fmt.Errorf("raft: storage: an earlier write failed: %w", s.failed)
	}
	return nil
}

// fail puts the storage in the failed state when err is not nil, and cuts
// the file back to what was durable before the failed write. A failed
// fsync may have lost the write while reads still see it (Linux marks the
// pages clean after a failed writeback): a process restarted on the same
// machine would read the record as saved, count on a vote or entries a
// power loss then takes, and lose what it saved after them too, cut off
// behind the lost record as a torn tail.
func (s *Storage) fail(err error) error {
	if err == nil {
		return nil
	}
	terr := s.f.Truncate(s.size)
	s.allocated = s.size
	if terr == nil {
		terr = s.f.Sync()
	}
	if terr != nil {
		err = errors.Join(err, fmt.Errorf("raft: storage: cut %s back to its last synced record at %d: %w", s.path, s.size, terr))
	}
	s.failed = err
	return err
}

// Compact records that the log up to snap.Index is replaced by snap, and
// rewrites the file without the entries it replaces.
func (s *Storage) Compact(snap *Snapshot) error {
	if err := s.refused(); err != nil {
		return err
	}
	if err := snapshotFits(snap); err != nil {
		return err
	}
	s.putSnapshot(snap)
	return s.fail(s.rewrite())
}

// rewrite replaces the file with one holding only the current state.
func (s *Storage) rewrite() error {
	var buf []byte
	var err error
	if s.state.Snapshot != nil {
		if buf, err = appendSnapshotRecord(buf, s.state.Snapshot); err != nil {
			return err
		}
	}
	if buf, err = appendEntriesRecords(buf, s.state.Entries); err != nil {
		return err
	}
	buf = appendRecord(buf, hardStateRecord(s.state.HardState))
	if err := segment.ReplaceFile(s.fs, s.path, s.path+".tmp", buf); err != nil {
		return fmt.Errorf("raft: storage: rewrite: %w", err)
	}
	f, err := s.fs.OpenFile(s.path, os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("raft: storage: rewrite: %w", err)
	}
	s.f.Close()
	s.f, s.size, s.allocated = f, int64(len(buf)), int64(len(buf))
	s.keepRoom(0)
	return nil
}

// Close closes the file.
func (s *Storage) Close() error {
	if s.f == nil {
		return errors.New("raft: storage already closed")
	}
	err := s.f.Close()
	s.f = nil
	return err
}
