// Package eventlog is chronik's cluster metadata: events, the pure state
// machine that applies them, and the metadata log __chronik_metadata-0 on a
// segment store, with snapshots. Every node's view of the cluster is the
// replay of that log; nothing else holds metadata.
//
// Use: open the log on a store, append events (one or an atomic group),
// read the state they build.
//
//	l, err := eventlog.Open(store, eventlog.Options{Epoch: term})
//	off, err := l.Append(&eventlog.TopicCreated{...}, &eventlog.PartitionChanged{...})
//	l.View(func(s *eventlog.State) { t := s.Topics["orders"] })
//
// # On-disk format
//
// Everything below is part of the on-disk format.
//
// Each event is one Kafka record of a RecordBatch v2 in
// __chronik_metadata-0 (see package segment): key = the entity
// ("topic/<name>", "broker/<id>", "config/<topic|broker>/<name>",
// "producer-ids", "controller", or none for NoOp), value =
//
//	frame version uvarint (0) | event type uvarint | event version uvarint (0) | payload
//
// Payloads are varints (zig-zag for signed), length-prefixed strings and
// lists, 16-byte UUIDs; each type's field order is in events.go. Type
// numbers are never reused. Batches whose records exceed 4 KiB are
// zstd-compressed. A batch is applied all or nothing.
//
// Snapshots, <offset 20 digits>-<epoch 10 digits>.checkpoint in the log's
// directory, hold the state as the events that rebuild it:
//
//	"CKSNAP" | format version uvarint (0) | offset varint | epoch varint | next producer id varint
//	zstd frame of (length uvarint | event value) ...
//	"CKEND" | event count uint32 | offset int64 | CRC-32C of every byte before it uint32
//
// # Consistency
//
// Appends are validated against a speculative state that holds every
// accepted event; the readers' state holds only durable ones. Replay of a
// log the controller wrote never fails to apply; if it does, the log is
// damaged and Open says where.
package eventlog
