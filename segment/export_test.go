package segment

// EncodeRecoveryPointForTest builds a recovery-point file naming pos in the
// segment with base offset base.
func EncodeRecoveryPointForTest(base, pos int64) []byte {
	return encodeRecoveryPoint(recoveryPoint{seq: 1, base: base, pos: pos})
}

// SparesReady is how many spare partition directories are ready.
func (s *Store) SparesReady() int {
	if s.spares == nil {
		return 0
	}
	return s.spares.count()
}

// SyncForTest runs one of the committer's syncs of the log, as a round
// does, and returns its result.
func (l *Log) SyncForTest() (int64, uint64, error) { return l.sync() }
