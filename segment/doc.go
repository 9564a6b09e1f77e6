// Package segment is chronik's storage engine: a partition's log as a
// directory of segment files holding Kafka record batches exactly as they
// travel on the wire, with sparse indexes, one group committer per process,
// crash recovery and retention. User partitions and the metadata log
// (__chronik_metadata-0) are both Logs.
//
// Use: open a Store on a data directory (it takes the directory's lock and
// runs the committer), open a Log per partition, Append batches and wait on
// the returned handle for durability, Read with Kafka fetch semantics. A
// failed sync drops every write not yet durable and later appends take
// their offsets: wait on every handle whose durability you count on, or
// append with AppendAt where the log must end (AppendAfter: where it must
// still reach).
//
//	st, err := segment.OpenStore("data", segment.StoreOptions{Profile: segment.ProfileLow})
//	l, err := st.Open("orders", 0, segment.DefaultConfig())
//	a, err := l.Append(batch, leaderEpoch, acks)
//	err = a.Wait()                       // durable (acks 1 or -1)
//	b, err := l.Read(offset, 1<<20, nil) // whole batches, at least one
//
// # On-disk format
//
// Everything below is part of the on-disk format.
//
// A partition directory <topic>-<partition>/ holds segments named by their
// base offset in 20 digits: NNNNNNNNNNNNNNNNNNNN.log, .index and .timeindex,
// a recovery-point file, and a log-start-offset file once records were
// deleted (DeleteRecordsBefore).
//
// A .log file is a sequence of RecordBatch v2, big-endian:
//
//	 0  baseOffset            int64   assigned by Append
//	 8  batchLength           int32   bytes after this field
//	12  partitionLeaderEpoch  int32   assigned by Append
//	16  magic                 int8    2
//	17  crc                   uint32  CRC-32C (Castagnoli) of bytes [21, end)
//	21  attributes            int16   codec (bits 0-2), timestamp type, transactional, control
//	23  lastOffsetDelta       int32
//	27  baseTimestamp         int64
//	35  maxTimestamp          int64
//	43  producerId            int64
//	51  producerEpoch         int16
//	53  baseSequence          int32
//	57  recordCount           int32
//	61  records ...
//
// Batches follow each other without gaps, each base offset one past the
// previous batch's last offset. The active segment is preallocated ahead of
// its end; the bytes after the last batch are zero, so a zero header ends
// the log.
//
// .index entries (8 bytes): relative base offset uint32 | file position
// uint32, one every index.interval.bytes. .timeindex entries (12 bytes): max
// timestamp so far int64 | relative offset of the batch holding it uint32.
// Both end in an 8-byte trailer: magic "CKIX" or "CKTI" | CRC-32C of the
// entries. They are written when a segment is sealed; the active segment's
// indexes are rebuilt by the recovery scan.
//
// recovery-point: two 32-byte slots, written alternately:
//
//	magic "CKRP" | seq uint64 | segment base offset int64 | position int64 | CRC-32C of bytes [0, 28)
//
// The valid slot with the higher seq says how far the log was synced.
//
// log-start-offset: 16 bytes, replaced whole (temporary file, rename):
//
//	magic "CKLS" | log start offset int64 | CRC-32C of bytes [0, 12)
//
// Offsets below it are deleted even where a segment still holds them. A
// missing or damaged file means the first segment's base offset.
//
// # Recovery
//
// A torn tail (damage after the recovery point: a crash cut a write short)
// is the end of the log: it is zeroed and appends continue in the same
// segment. Damage before the recovery point is corruption: the Log refuses
// to open with a *CorruptionError naming the file, position and offset.
package segment
