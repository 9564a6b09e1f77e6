package segment

import "testing"

// FuzzRecoveryPoint: any bytes decode to no point or to a point whose slot
// checksum matched; a valid encoding round-trips.
func FuzzRecoveryPoint(f *testing.F) {
	a := encodeRecoveryPoint(recoveryPoint{seq: 1, base: 0, pos: 100})
	b := encodeRecoveryPoint(recoveryPoint{seq: 2, base: 50, pos: 7})
	f.Add(append(a, b...))
	f.Add(a)
	f.Add(append(a, b[:10]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rp, ok := decodeRecoveryPoint(data)
		if !ok {
			return
		}
		if rp.base < 0 || rp.pos < 0 {
			t.Fatalf("negative point %+v", rp)
		}
		again, ok := decodeRecoveryPoint(encodeRecoveryPoint(rp))
		if !ok || again != rp {
			t.Fatalf("round trip %+v -> %+v", rp, again)
		}
	})
}

// FuzzStartOffset: any bytes decode to no offset or to a non-negative one
// whose checksum matched; a valid encoding round-trips.
func FuzzStartOffset(f *testing.F) {
	f.Add(encodeStartOffset(0))
	f.Add(encodeStartOffset(1 << 40))
	f.Add(encodeStartOffset(7)[:15])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		off, ok := decodeStartOffset(data)
		if !ok {
			return
		}
		if off < 0 {
			t.Fatalf("negative offset %d", off)
		}
		if again, ok := decodeStartOffset(encodeStartOffset(off)); !ok || again != off {
			t.Fatalf("round trip of %d: %d %v", off, again, ok)
		}
	})
}
