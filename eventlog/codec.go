package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrDecode is wrapped by every error decoding an event or a snapshot.
var ErrDecode = errors.New("eventlog: cannot decode")

// encoder appends the compact binary payload encoding: unsigned varints,
// zig-zag varints, length-prefixed strings and lists. Part of the on-disk
// format.
type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) uuid(u UUID)      { e.b = append(e.b, u[:]...) }

func (e *encoder) boolean(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) int32s(v []int32) {
	e.uvarint(uint64(len(v)))
	for _, x := range v {
		e.varint(int64(x))
	}
}

// decoder reads what encoder wrote. The first error sticks; every length is
// checked against the bytes left before anything is allocated.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrDecode}, args...)...)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad unsigned varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// signed reads a varint that must fit in a signed integer of bits bits.
func (d *decoder) signed(bits uint) int64 {
	v := d.varint()
	if lim := int64(1) << (bits - 1); v < -lim || v >= lim {
		d.fail("%d does not fit in int%d", v, bits)
		return 0
	}
	return v
}

func (d *decoder) int32() int32 { return int32(d.signed(32)) }
func (d *decoder) int16() int16 { return int16(d.signed(16)) }
func (d *decoder) int8() int8   { return int8(d.signed(8)) }

// length reads a count of items of at least min bytes each.
func (d *decoder) length(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.length(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) boolean() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < 1 || d.b[0] > 1 {
		d.fail("bad boolean")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) uuid() UUID {
	var u UUID
	if d.err != nil {
		return u
	}
	if len(d.b) < len(u) {
		d.fail("truncated UUID")
		return u
	}
	copy(u[:], d.b)
	d.b = d.b[len(u):]
	return u
}

func (d *decoder) int32s() []int32 {
	n := d.length(1)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = d.int32()
	}
	return out
}

// end checks that the payload was consumed exactly.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the payload", len(d.b))
	}
	return d.err
}
