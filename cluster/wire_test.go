package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/chronik-stream/chronik/eventlog"
)

// TestSnapshotParts: a snapshot's parts add up to it; a part that says
// another size, goes past the size, is empty, or a size out of bounds is
// refused.
func TestSnapshotParts(t *testing.T) {
	var s snapshotParts
	for i, part := range []string{"abc", "de", "f"} {
		whole, err := s.add(6, []byte(part))
		if err != nil {
			t.Fatal(err)
		}
		if (whole != nil) != (i == 2) {
			t.Fatalf("part %d: whole %q", i, whole)
		}
		if i == 2 && string(whole) != "abcdef" || s.pending() == (i == 2) {
			t.Fatalf("after part %d: %q, pending %v", i, whole, s.pending())
		}
	}
	for name, parts := range map[string][]struct {
		size int64
		b    string
	}{
		"another size":  {{6, "abc"}, {7, "def"}},
		"past the size": {{4, "abc"}, {4, "de"}},
		"empty part":    {{4, ""}},
		"no size":       {{0, "a"}},
		"too large":     {{eventlog.MaxSnapshotBytes + 1, "a"}},
	} {
		var s snapshotParts
		var err error
		for _, p := range parts {
			if _, err = s.add(p.size, []byte(p.b)); err != nil {
				break
			}
		}
		if !errors.Is(err, errBadFrame) {
			t.Errorf("%s: %v, want a bad frame", name, err)
		}
	}
}

// FuzzSnapshotParts: whatever parts arrive (each a size and bytes), the
// parts are refused or add up to a snapshot of the size they said.
func FuzzSnapshotParts(f *testing.F) {
	frame := func(size int64, part string) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(size))
		b = binary.BigEndian.AppendUint16(b, uint16(len(part)))
		return append(b, part...)
	}
	f.Add(append(frame(5, "abc"), frame(5, "de")...))
	f.Add(append(frame(5, "abc"), frame(4, "d")...))
	f.Add(frame(1<<40, "x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s snapshotParts
		var sent []byte
		for len(data) >= 10 {
			size := int64(binary.BigEndian.Uint64(data))
			n := min(int(binary.BigEndian.Uint16(data[8:])), len(data)-10)
			part := data[10 : 10+n]
			data = data[10+n:]
			whole, err := s.add(size, part)
			if err != nil {
				return
			}
			sent = append(sent, part...)
			if whole != nil {
				if int64(len(whole)) != size || !bytes.Equal(whole, sent) {
					t.Fatalf("%d bytes of a %d-byte snapshot, sent %d", len(whole), size, len(sent))
				}
				sent = nil
			}
			if int64(len(s.b)) > s.size {
				t.Fatalf("holds %d bytes of a %d-byte snapshot", len(s.b), s.size)
			}
		}
	})
}
