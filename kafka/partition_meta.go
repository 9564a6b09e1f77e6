package kafka

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// partitionMetaFile records, as Kafka's file of that name does, which
// topic (by id) a partition directory belongs to: a directory left by a
// deleted topic of the same name (this node was down, or crashed before
// removing it) is recognised and cleared instead of served.
const partitionMetaFile = "partition.metadata"

// WithSpares returns o with the spare partition directories the broker
// uses (segment.StoreOptions.Spares): a few, each holding an empty
// partition.metadata, so that a new partition's first message creates no
// file. Sequential bursts of new partitions beyond them make their own.
func WithSpares(o segment.StoreOptions) segment.StoreOptions {
	o.Spares, o.SpareFiles = 4, []string{partitionMetaFile}
	return o
}

func (b *Broker) partitionPath(topic string, p int32, name string) string {
	return filepath.Join(b.store.Dir(), segment.PartitionDir(topic, p), name)
}

// claimPartition clears a directory of another topic of this name, and
// reports whether the directory still needs its metadata file. Only a file
// that names another topic id clears it: a missing, empty or garbled one
// (the file is written without a sync, see writePartitionMeta) is taken
// as this topic's and written again.
func (b *Broker) claimPartition(topic string, p int32, id eventlog.UUID) (bool, error) {
	data, err := segment.ReadFile(b.store.FS(), b.partitionPath(topic, p, partitionMetaFile), 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	owner, ok := metaTopicID(data)
	switch {
	case !ok:
		return true, nil
	case owner == id.String():
		return false, nil
	}
	b.log.Warn("removing a partition directory of an earlier topic of the same name", "topic", topic, "partition", p, "topic_id", id, "directory_topic_id", owner)
	return true, b.store.Remove(topic, p)
}

// metaTopicID returns the topic id a partition.metadata file names, if it
// names a well-formed one.
func metaTopicID(data []byte) (string, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		v, found := strings.CutPrefix(line, "topic_id: ")
		if !found {
			continue
		}
		if len(v) != 36 {
			return "", false
		}
		for i, c := range v {
			dash := i == 8 || i == 13 || i == 18 || i == 23
			if dash != (c == '-') || !dash && !strings.ContainsRune("0123456789abcdef", c) {
				return "", false
			}
		}
		return v, true
	}
	return "", false
}

// writePartitionMeta writes the metadata file. It is not synced: what it
// protects against (serving an earlier topic's data) needs it only once it
// is whole, and a file a crash left empty or torn is taken as this topic's
// (claimPartition), so the first message to a new partition pays no sync
// for it.
func (b *Broker) writePartitionMeta(topic string, p int32, id eventlog.UUID) error {
	f, err := b.store.FS().OpenFile(b.partitionPath(topic, p, partitionMetaFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(fmt.Sprintf("version: 0\ntopic_id: %s\n", id)), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sweepPartitions closes and deletes the open partitions whose topic was
// deleted (or replaced by a new topic of the same name), as the metadata
// this node follows says: in a cluster the controller cannot delete other
// nodes' files. The others take their topic's configs if they changed.
func (b *Broker) sweepPartitions() {
	type open struct {
		topic string
		p     int32
		id    eventlog.UUID
		part  *partition
		now   *eventlog.Topic // the topic as the metadata has it
	}
	var gone, kept []open
	b.mu.Lock()
	var all []open
	for _, part := range b.parts {
		all = append(all, open{topic: part.topic, p: part.p, id: part.topicID, part: part})
	}
	b.mu.Unlock()
	b.meta.View(func(s *eventlog.State) {
		for _, o := range all {
			if t := s.Topics[o.topic]; t == nil || t.ID != o.id || int(o.p) >= len(t.Partitions) {
				gone = append(gone, o)
			} else {
				o.now = t
				kept = append(kept, o)
			}
		}
	})
	for _, o := range kept {
		o.part.configure(o.now) // a config changed through another node
	}
	for _, o := range gone {
		if err := b.dropPartition(o.topic, o.p); err != nil {
			b.log.Warn("cannot remove a deleted topic's partition", "topic", o.topic, "partition", o.p, "error", err)
		}
	}
}
