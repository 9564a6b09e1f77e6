package segment

import (
	"encoding/binary"
	"hash/crc32"
)

// The recovery-point file records how far a partition's log is known to be
// synced. Damage found before it when the log is opened is corruption (the
// partition refuses to open); damage after it is a torn tail (truncated).
//
// Format (part of the on-disk format): two 32-byte slots, written
// alternately so that a torn write of one leaves the other readable.
//
//	magic "CKRP" | seq uint64 | segment base offset int64 | position int64 | CRC-32C of bytes [0,28) uint32
//
// The valid slot with the higher seq wins. No valid slot means no point is
// known: the whole active segment is treated as tail.
const (
	recoveryPointFile = "recovery-point"
	rpSlotSize        = 32
	rpMagic           = "CKRP"
)

type recoveryPoint struct {
	seq  uint64
	base int64 // the segment the point lies in
	pos  int64 // synced bytes of that segment
}

func encodeRecoveryPoint(rp recoveryPoint) []byte {
	b := make([]byte, rpSlotSize)
	copy(b, rpMagic)
	binary.BigEndian.PutUint64(b[4:], rp.seq)
	binary.BigEndian.PutUint64(b[12:], uint64(rp.base))
	binary.BigEndian.PutUint64(b[20:], uint64(rp.pos))
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crc32c))
	return b
}

// decodeRecoveryPoint returns the newest valid slot in b.
func decodeRecoveryPoint(b []byte) (recoveryPoint, bool) {
	var best recoveryPoint
	found := false
	for off := 0; off+rpSlotSize <= len(b) && off < 2*rpSlotSize; off += rpSlotSize {
		s := b[off : off+rpSlotSize]
		if string(s[:4]) != rpMagic || binary.BigEndian.Uint32(s[28:]) != crc32.Checksum(s[:28], crc32c) {
			continue
		}
		rp := recoveryPoint{
			seq:  binary.BigEndian.Uint64(s[4:]),
			base: int64(binary.BigEndian.Uint64(s[12:])),
			pos:  int64(binary.BigEndian.Uint64(s[20:])),
		}
		if rp.base < 0 || rp.pos < 0 {
			continue
		}
		if !found || rp.seq > best.seq {
			best, found = rp, true
		}
	}
	return best, found
}
