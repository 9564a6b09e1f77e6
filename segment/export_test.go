package segment

// EncodeRecoveryPointForTest builds a recovery-point file naming pos in the
// segment with base offset base.
func EncodeRecoveryPointForTest(base, pos int64) []byte {
	return encodeRecoveryPoint(recoveryPoint{seq: 1, base: base, pos: pos})
}
