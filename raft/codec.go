package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// codecVersion is the first byte of an encoded message.
const codecVersion = 1

// ErrBadMessage is the error of Decode for bytes that are not a message.
var ErrBadMessage = errors.New("raft: bad message")

const (
	flagReject = 1 << iota
	flagForce
	flagSnapshot
)

// Encode appends m's binary form to dst.
func Encode(dst []byte, m Message) []byte {
	be := binary.BigEndian
	dst = append(dst, codecVersion, byte(m.Type))
	dst = be.AppendUint32(dst, uint32(m.From))
	dst = be.AppendUint32(dst, uint32(m.To))
	for _, v := range []uint64{m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint, m.HintTerm} {
		dst = be.AppendUint64(dst, v)
	}
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Force {
		flags |= flagForce
	}
	if m.Snapshot != nil {
		flags |= flagSnapshot
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
	for _, e := range m.Entries {
		dst = be.AppendUint64(dst, e.Term)
		dst = be.AppendUint64(dst, e.Index)
		dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
		dst = append(dst, e.Data...)
	}
	if s := m.Snapshot; s != nil {
		dst = be.AppendUint64(dst, s.Index)
		dst = be.AppendUint64(dst, s.Term)
		dst = binary.AppendUvarint(dst, uint64(len(s.Data)))
		dst = append(dst, s.Data...)
	}
	return dst
}

// decoder reads fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrBadMessage, what)
	}
}

func (d *decoder) u8(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32(what string) uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64(what string) uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// count reads a length that must fit in what is left, each item taking at
// least min bytes: nothing is allocated beyond the input's size.
func (d *decoder) count(what string, min int) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > uint64(len(d.b)-n)/uint64(min) {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) bytes(what string) []byte {
	n := d.count(what, 1)
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return v
}

// Decode reads a message encoded by Encode. The entries' and snapshot's
// data alias b.
func Decode(b []byte) (Message, error) {
	d := &decoder{b: b}
	var m Message
	if v := d.u8("version"); d.err == nil && v != codecVersion {
		return m, fmt.Errorf("%w: version %d, this node reads %d", ErrBadMessage, v, codecVersion)
	}
	m.Type = MsgType(d.u8("type"))
	if d.err == nil && (m.Type < MsgPreVote || m.Type > MsgTimeoutNow) {
		return m, fmt.Errorf("%w: unknown type %d", ErrBadMessage, m.Type)
	}
	m.From, m.To = int32(d.u32("from")), int32(d.u32("to"))
	m.Term, m.LogTerm, m.Index = d.u64("term"), d.u64("log term"), d.u64("index")
	m.Commit, m.RejectHint, m.HintTerm = d.u64("commit"), d.u64("reject hint"), d.u64("hint term")
	flags := d.u8("flags")
	m.Reject, m.Force = flags&flagReject != 0, flags&flagForce != 0
	if n := d.count("entry count", 17); n > 0 {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			m.Entries[i] = Entry{Term: d.u64("entry term"), Index: d.u64("entry index"), Data: d.bytes("entry data")}
		}
	}
	if flags&flagSnapshot != 0 {
		m.Snapshot = &Snapshot{Index: d.u64("snapshot index"), Term: d.u64("snapshot term"), Data: d.bytes("snapshot data")}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the message", ErrBadMessage, len(d.b))
	}
	return m, d.err
}
