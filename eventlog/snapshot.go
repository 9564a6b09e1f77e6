package eventlog

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/chronik-stream/chronik/segment"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Snapshot file format (part of the on-disk format). The file is named
// <offset 20 digits>-<epoch 10 digits>.checkpoint and holds the state
// built from the events below offset, written as events:
//
//	header:  magic "CKSNAP" | format version uvarint (0) | offset varint | epoch varint | next producer id varint
//	body:    zstd frame of: (length uvarint | event record value, as Encode) ...
//	footer:  magic "CKEND" | event count uint32 | offset int64 | CRC-32C of every byte before it uint32
//
// It is written to a temporary file, synced, renamed into place and the
// directory synced, so a crash leaves either the whole file or none.
const (
	snapMagic      = "CKSNAP"
	snapEndMagic   = "CKEND"
	snapFooterSize = len(snapEndMagic) + 4 + 8 + 4
	snapSuffix     = ".checkpoint"
	snapTmpSuffix  = ".checkpoint.tmp"
)

// MaxSnapshotBytes bounds a snapshot: its file, and its body decompressed.
const MaxSnapshotBytes = 1 << 30

// maxSnapshotBody is the bound on a snapshot's decompressed body that
// Snapshot writes and DecodeSnapshot reads: MaxSnapshotBytes (a variable
// for tests).
var maxSnapshotBody = MaxSnapshotBytes

// ErrSnapshotTooLarge: the state is larger than a snapshot may hold.
var ErrSnapshotTooLarge = errors.New("eventlog: the state is larger than a snapshot may hold")

// SnapshotName is the file name of a snapshot at offset and epoch.
func SnapshotName(offset int64, epoch int32) string {
	return fmt.Sprintf("%020d-%010d%s", offset, epoch, snapSuffix)
}

// parseSnapshotName returns the offset of a snapshot file name.
func parseSnapshotName(name string) (int64, bool) {
	base, ok := strings.CutSuffix(name, snapSuffix)
	if !ok || len(base) != 31 || base[20] != '-' {
		return 0, false
	}
	off, err := strconv.ParseInt(base[:20], 10, 64)
	if _, eerr := strconv.ParseInt(base[21:], 10, 32); err != nil || eerr != nil {
		return 0, false
	}
	return off, true
}

// stateEvents writes s as the events that rebuild it from nothing, in an
// order Apply accepts: controller, brokers, producer id blocks, broker
// configs, topics with their partitions. Sorted, so equal states give
// equal snapshots.
func stateEvents(s *State) []Event {
	var out []Event
	if s.Controller.Term != 0 || s.Controller.Leader >= 0 || len(s.Controller.Voters) > 0 {
		out = append(out, &LeaderChanged{Term: s.Controller.Term, Leader: s.Controller.Leader, Voters: s.Controller.Voters})
	}
	for _, id := range sortedKeys(s.Brokers) {
		b := s.Brokers[id]
		out = append(out, &BrokerRegistered{BrokerID: b.ID, Incarnation: b.Incarnation, Endpoints: b.Endpoints, Rack: b.Rack})
		if b.Fenced {
			out = append(out, &BrokerFenced{BrokerID: b.ID})
		}
	}
	blocks := make([]int32, 0, len(s.ProducerBlocks))
	for id := range s.ProducerBlocks {
		blocks = append(blocks, id)
	}
	sort.Slice(blocks, func(i, j int) bool { return s.ProducerBlocks[blocks[i]].First < s.ProducerBlocks[blocks[j]].First })
	for _, id := range blocks {
		blk := s.ProducerBlocks[id]
		out = append(out, &ProducerIdsAllocated{BrokerID: id, First: blk.First, Count: blk.Count})
	}
	for _, res := range sortedKeys(s.BrokerConfigs) {
		for _, k := range sortedKeys(s.BrokerConfigs[res]) {
			out = append(out, &ConfigChanged{ResourceType: ResourceBroker, Resource: res, Name: k, Value: s.BrokerConfigs[res][k]})
		}
	}
	for _, name := range sortedKeys(s.Topics) {
		tp := s.Topics[name]
		tc := &TopicCreated{Name: tp.Name, TopicID: tp.ID, PartitionCount: int32(len(tp.Partitions)), ReplicationFactor: tp.ReplicationFactor}
		for _, k := range sortedKeys(tp.Configs) {
			tc.Configs = append(tc.Configs, ConfigEntry{Key: k, Value: tp.Configs[k]})
		}
		out = append(out, tc)
		for i, p := range tp.Partitions {
			if len(p.Replicas) == 0 {
				continue // never assigned
			}
			out = append(out, &PartitionChanged{Topic: tp.Name, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch})
		}
	}
	return out
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// EncodeSnapshot returns the snapshot file bytes of s.
func EncodeSnapshot(s *State, epoch int32) []byte {
	b, _ := encodeSnapshot(s, epoch)
	return b
}

// encodeSnapshot returns the snapshot file bytes of s and the size of its
// body before compression.
func encodeSnapshot(s *State, epoch int32) ([]byte, int) {
	var w encoder
	w.b = append(w.b, snapMagic...)
	w.uvarint(0)
	w.varint(s.Offset)
	w.varint(int64(epoch))
	w.varint(s.NextProducerID)
	var body []byte
	events := stateEvents(s)
	for _, e := range events {
		v := Encode(e)
		body = binary.AppendUvarint(body, uint64(len(v)))
		body = append(body, v...)
	}
	out := zstdEncoder.EncodeAll(body, w.b)
	out = append(out, snapEndMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(events)))
	out = binary.BigEndian.AppendUint64(out, uint64(s.Offset))
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32c)), len(body)
}

// DecodeSnapshot rebuilds the state a snapshot file holds. Every check
// fails with an error wrapping ErrDecode; nothing larger than the file,
// or than 1 GiB decompressed, is allocated.
func DecodeSnapshot(b []byte) (*State, int32, error) {
	if len(b) < len(snapMagic)+snapFooterSize {
		return nil, 0, fmt.Errorf("%w: snapshot of %d bytes is too short", ErrDecode, len(b))
	}
	foot := b[len(b)-snapFooterSize:]
	if string(foot[:len(snapEndMagic)]) != snapEndMagic {
		return nil, 0, fmt.Errorf("%w: snapshot footer is missing (a torn write?)", ErrDecode)
	}
	if got, want := crc32.Checksum(b[:len(b)-4], crc32c), binary.BigEndian.Uint32(foot[snapFooterSize-4:]); got != want {
		return nil, 0, fmt.Errorf("%w: snapshot checksum %08x, the footer says %08x", ErrDecode, got, want)
	}
	count := binary.BigEndian.Uint32(foot[len(snapEndMagic):])
	footOffset := int64(binary.BigEndian.Uint64(foot[len(snapEndMagic)+4:]))
	if string(b[:len(snapMagic)]) != snapMagic {
		return nil, 0, fmt.Errorf("%w: not a snapshot file (bad magic)", ErrDecode)
	}
	d := decoder{b: b[len(snapMagic) : len(b)-snapFooterSize]}
	if v := d.uvarint(); d.err == nil && v != 0 {
		return nil, 0, fmt.Errorf("%w: snapshot format version %d is unknown", ErrDecode, v)
	}
	offset, epoch, nextPID := d.varint(), d.int32(), d.varint()
	if d.err != nil {
		return nil, 0, d.err
	}
	if offset != footOffset || offset < 0 {
		return nil, 0, fmt.Errorf("%w: snapshot header says offset %d, footer %d", ErrDecode, offset, footOffset)
	}
	zr, err := zstd.NewReader(bytes.NewReader(d.b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxSnapshotBody)))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	defer zr.Close()
	body, err := io.ReadAll(io.LimitReader(zr, int64(maxSnapshotBody)+1))
	if err != nil || len(body) > maxSnapshotBody {
		return nil, 0, fmt.Errorf("%w: snapshot body: %v", ErrDecode, err)
	}
	s := NewState()
	bd := decoder{b: body}
	var n uint32
	for len(bd.b) > 0 {
		size := bd.length(1)
		if bd.err != nil {
			return nil, 0, bd.err
		}
		e, err := Decode(bd.b[:size])
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot event %d: %w", n, err)
		}
		bd.b = bd.b[size:]
		if err := applyOwned(s, e); err != nil {
			return nil, 0, fmt.Errorf("%w: snapshot event %d: %v", ErrDecode, n, err)
		}
		n++
	}
	if n != count {
		return nil, 0, fmt.Errorf("%w: snapshot holds %d events, the footer says %d", ErrDecode, n, count)
	}
	if nextPID < s.NextProducerID {
		return nil, 0, fmt.Errorf("%w: next producer id %d is below the blocks given out", ErrDecode, nextPID)
	}
	s.NextProducerID = nextPID
	s.Offset = offset
	return s, epoch, nil
}

// writeSnapshot writes data as dir/name: temporary file, sync, rename,
// directory sync.
func writeSnapshot(fsys segment.FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, strings.TrimSuffix(name, snapSuffix)+snapTmpSuffix)
	if err := segment.ReplaceFile(fsys, filepath.Join(dir, name), tmp, data); err != nil {
		return fmt.Errorf("eventlog: write snapshot %s: %w", name, err)
	}
	return nil
}

// snapshots lists the snapshot files in dir, newest first.
func snapshots(fsys segment.FS, dir string) ([]string, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if _, ok := parseSnapshotName(n); ok {
			out = append(out, n)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// readSnapshotEpoch reads and decodes a snapshot file: its state, the
// epoch of the last batch it covers, and its bytes.
func readSnapshotEpoch(fsys segment.FS, path string) (*State, int32, []byte, error) {
	b, err := segment.ReadFile(fsys, path, MaxSnapshotBytes)
	if err != nil {
		return nil, 0, nil, err
	}
	s, epoch, err := DecodeSnapshot(b)
	return s, epoch, b, err
}

// LatestSnapshot returns the newest valid snapshot's bytes and the offset
// it covers up to: what a follower too far behind installs.
func (l *Log) LatestSnapshot() ([]byte, int64, error) {
	names, err := snapshots(l.fs(), l.dir)
	if err != nil {
		return nil, 0, err
	}
	for _, name := range names {
		s, _, b, err := readSnapshotEpoch(l.fs(), filepath.Join(l.dir, name))
		if err == nil {
			return b, s.Offset, nil
		}
	}
	return nil, 0, errors.New("eventlog: no snapshot to send")
}

// loadSnapshot returns the state of the newest valid snapshot in dir, its
// path and the epoch of the last batch it covers, or the empty state if
// there is none. A damaged snapshot is reported and the next older one
// tried.
func loadSnapshot(fsys segment.FS, dir string, log *slog.Logger) (*State, string, int32, error) {
	names, err := snapshots(fsys, dir)
	if err != nil {
		return nil, "", 0, fmt.Errorf("eventlog: list snapshots: %w", err)
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		s, epoch, _, err := readSnapshotEpoch(fsys, path)
		if err != nil {
			log.Warn("damaged snapshot, trying an older one", "file", name, "error", err)
			continue
		}
		if off, _ := parseSnapshotName(name); off != s.Offset {
			log.Warn("snapshot's name and contents disagree, trying an older one", "file", name, "offset", s.Offset)
			continue
		}
		return s, path, epoch, nil
	}
	return NewState(), "", 0, nil
}

// Snapshot writes a snapshot of the durable state now, keeps the newest
// two, and deletes the log segments the older of them covers.
func (l *Log) Snapshot() error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.smu.RLock()
	offset := l.state.Offset
	l.smu.RUnlock()
	// The snapshot is named for the epoch of the last batch it covers
	// (Kafka's snapshot id: end offset and epoch), so that a follower that
	// installs it knows what the next batch must follow.
	l.wmu.Lock()
	epoch := l.epochBeforeLocked(offset)
	if epoch < 0 {
		epoch = l.epoch
	}
	l.wmu.Unlock()
	l.smu.RLock()
	if l.state.Offset != offset {
		l.smu.RUnlock()
		return nil // moved on meanwhile: the next snapshot takes it
	}
	data, body := encodeSnapshot(l.state, epoch)
	l.smu.RUnlock()
	if body > maxSnapshotBody {
		// Written, it could not be read back, and the segments it covers
		// would go: the log stays whole instead.
		return fmt.Errorf("%w: %d bytes at offset %d, at most %d; the log is kept whole", ErrSnapshotTooLarge, body, offset, maxSnapshotBody)
	}
	fsys := l.fs()
	names, err := snapshots(fsys, l.dir)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		if newest, _ := parseSnapshotName(names[0]); newest == offset {
			return nil // nothing new
		}
	}
	start := time.Now()
	name := SnapshotName(offset, epoch)
	if err := writeSnapshot(fsys, l.dir, name, data); err != nil {
		return err
	}
	l.log.Info("wrote snapshot", "file", name, "bytes", len(data), "took", time.Since(start).Round(time.Microsecond))
	names = append([]string{name}, names...)
	for _, old := range names[min(len(names), snapshotsKept):] {
		if err := fsys.Remove(filepath.Join(l.dir, old)); err != nil {
			l.log.Warn("cannot delete old snapshot", "file", old, "error", err)
		}
	}
	if l.opts.KeepSegments {
		return nil
	}
	// Segments wholly covered by the oldest snapshot kept can go.
	kept := names[:min(len(names), snapshotsKept)]
	oldest, _ := parseSnapshotName(kept[len(kept)-1])
	if n, err := l.seg.DeleteSegmentsBefore(oldest); err != nil {
		l.log.Warn("cannot delete segments covered by snapshots", "error", err)
	} else if n > 0 {
		l.log.Info("deleted segments covered by a snapshot", "segments", n, "log_start_offset", l.seg.StartOffset())
	}
	return nil
}

// maybeSnapshotLocked starts a snapshot in the background when enough was
// appended or enough time passed. Callers hold wmu.
func (l *Log) maybeSnapshotLocked() {
	due := l.sinceSnap >= l.opts.SnapshotBytes ||
		(l.sinceSnap > 0 && time.Since(l.lastSnapshot) >= l.opts.SnapshotInterval)
	if l.opts.SnapshotBytes < 0 || !due {
		return
	}
	l.sinceSnap, l.lastSnapshot = 0, time.Now()
	go func() {
		if err := l.Snapshot(); err != nil {
			l.log.Warn("snapshot failed", "error", err)
		}
	}()
}
