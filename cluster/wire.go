// Package cluster ships the metadata log from the controller to the other
// nodes (the fast path of design.md's "Cluster"): the controller streams its
// durable batches to each follower over the replication port, a follower
// appends the identical bytes at the identical offsets, syncs and
// acknowledges its log end, and the controller commits what a majority
// holds (only up to a batch of its own epoch, Raft's Figure 8 rule). A
// follower whose tail diverges (an old controller's uncommitted batches)
// truncates it first, by epoch, as Kafka's followers do with
// OffsetsForLeaderEpoch.
package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/internal/framing"
)

// StreamMetadata is the stream type byte of metadata shipping on the
// replication port.
const StreamMetadata byte = 'M'

// Frame kinds. Controller to follower: hello, epoch, batch, commit;
// follower to controller: state, ack, error.
const (
	kindHello    byte = 1 // epoch i32, controller id i32, cluster id (the rest; empty: none yet)
	kindState    byte = 2 // log end i64, last epoch i32
	kindEpoch    byte = 3 // epoch i32, its end i64 (answer to a diverging state)
	kindBatch    byte = 4 // previous epoch i32, commit i64, one or more whole batches
	kindAck      byte = 5 // log end i64, last epoch i32
	kindCommit   byte = 6 // commit i64
	kindError    byte = 7 // message
	kindSnapshot byte = 8 // snapshot size i64, a part of its bytes (the follower is behind the log start)
)

// maxFrame bounds a frame: a metadata batch is at most a few MiB.
const maxFrame = 64 << 20

// snapshotPart is the most of a snapshot one frame carries: a snapshot
// (up to eventlog.MaxSnapshotBytes) goes in as many frames as it needs,
// one after another.
const snapshotPart = 16 << 20

// snapshotParts gathers a snapshot that arrives in parts.
type snapshotParts struct {
	size int64 // the whole snapshot's, as each part says
	b    []byte
}

// add takes the next part of a snapshot of size bytes and returns the
// whole snapshot once its last part is in (nil before). The memory held
// grows with the parts that arrive, never beyond size.
func (s *snapshotParts) add(size int64, part []byte) ([]byte, error) {
	switch {
	case size < 1 || size > eventlog.MaxSnapshotBytes:
		return nil, fmt.Errorf("%w: a snapshot of %d bytes (1 to %d)", errBadFrame, size, eventlog.MaxSnapshotBytes)
	case s.b != nil && size != s.size:
		return nil, fmt.Errorf("%w: a part of a %d-byte snapshot amid one of %d bytes", errBadFrame, size, s.size)
	case len(part) == 0 || int64(len(s.b))+int64(len(part)) > size:
		return nil, fmt.Errorf("%w: a snapshot part of %d bytes after %d of %d", errBadFrame, len(part), len(s.b), size)
	}
	if s.b == nil {
		s.size, s.b = size, make([]byte, 0, min(size, 2*snapshotPart))
	}
	s.b = append(s.b, part...)
	if int64(len(s.b)) < size {
		return nil, nil
	}
	whole := s.b
	*s = snapshotParts{}
	return whole, nil
}

// pending reports whether parts of a snapshot are in and others awaited.
func (s *snapshotParts) pending() bool { return s.b != nil }

var errBadFrame = errors.New("cluster: bad frame")

func writeFrame(w *bufio.Writer, kind byte, fields ...any) error {
	body := []byte{kind}
	for _, f := range fields {
		switch v := f.(type) {
		case int32:
			body = binary.BigEndian.AppendUint32(body, uint32(v))
		case int64:
			body = binary.BigEndian.AppendUint64(body, uint64(v))
		case []byte:
			body = append(body, v...)
		case string:
			body = append(body, v...)
		default:
			panic(fmt.Sprintf("cluster: frame field of type %T", f))
		}
	}
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(body)))
	if _, err := w.Write(size[:]); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Flush()
}

// frame is a received frame: its kind and a reader of its fields.
type frame struct {
	kind byte
	b    []byte
	err  error
}

func readFrame(r io.Reader) (*frame, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 1 || n > maxFrame {
		return nil, fmt.Errorf("%w: size %d", errBadFrame, n)
	}
	body, err := framing.ReadBody(r, int(n))
	if err != nil {
		return nil, err
	}
	return &frame{kind: body[0], b: body[1:]}, nil
}

func (f *frame) i32() int32 {
	if f.err != nil || len(f.b) < 4 {
		f.err = errBadFrame
		return 0
	}
	v := int32(binary.BigEndian.Uint32(f.b))
	f.b = f.b[4:]
	return v
}

func (f *frame) i64() int64 {
	if f.err != nil || len(f.b) < 8 {
		f.err = errBadFrame
		return 0
	}
	v := int64(binary.BigEndian.Uint64(f.b))
	f.b = f.b[8:]
	return v
}

// rest returns the remaining bytes.
func (f *frame) rest() []byte {
	b := f.b
	f.b = nil
	return b
}

// done reports a frame with bytes left over or too few.
func (f *frame) done() error {
	if f.err == nil && len(f.b) != 0 {
		f.err = fmt.Errorf("%w: %d bytes left over", errBadFrame, len(f.b))
	}
	return f.err
}
