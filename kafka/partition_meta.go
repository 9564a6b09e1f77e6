package kafka

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// partitionMetaFile records, as Kafka's file of that name does, which
// topic (by id) a partition directory belongs to: a directory left by a
// deleted topic of the same name (this node was down, or crashed before
// removing it) is recognised and cleared instead of served.
const partitionMetaFile = "partition.metadata"

func (b *Broker) partitionPath(topic string, p int32, name string) string {
	return filepath.Join(b.store.Dir(), segment.PartitionDir(topic, p), name)
}

// claimPartition clears a directory of another topic of this name, and
// reports whether the directory still needs its metadata file.
func (b *Broker) claimPartition(topic string, p int32, id eventlog.UUID) (bool, error) {
	data, err := segment.ReadFile(b.store.FS(), b.partitionPath(topic, p, partitionMetaFile), 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if strings.Contains(string(data), "topic_id: "+id.String()+"\n") {
		return false, nil
	}
	b.log.Warn("removing a partition directory of an earlier topic of the same name", "topic", topic, "partition", p, "topic_id", id)
	return true, b.store.Remove(topic, p)
}

// writePartitionMeta writes the metadata file: temporary file, sync,
// rename, directory sync.
func (b *Broker) writePartitionMeta(topic string, p int32, id eventlog.UUID) error {
	fsys := b.store.FS()
	final := b.partitionPath(topic, p, partitionMetaFile)
	tmp := final + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(fmt.Sprintf("version: 0\ntopic_id: %s\n", id)), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, final)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(final))
	}
	return err
}

// sweepPartitions closes and deletes the open partitions whose topic was
// deleted (or replaced by a new topic of the same name), as the metadata
// this node follows says: in a cluster the controller cannot delete other
// nodes' files.
func (b *Broker) sweepPartitions() {
	type open struct {
		topic string
		p     int32
		id    eventlog.UUID
	}
	var gone []open
	b.mu.Lock()
	var all []open
	for _, part := range b.parts {
		all = append(all, open{part.topic, part.p, part.topicID})
	}
	b.mu.Unlock()
	b.meta.View(func(s *eventlog.State) {
		for _, o := range all {
			if t := s.Topics[o.topic]; t == nil || t.ID != o.id || int(o.p) >= len(t.Partitions) {
				gone = append(gone, o)
			}
		}
	})
	for _, o := range gone {
		if err := b.dropPartition(o.topic, o.p); err != nil {
			b.log.Warn("cannot remove a deleted topic's partition", "topic", o.topic, "partition", o.p, "error", err)
		}
	}
}

// sweepLoop sweeps every few seconds until the broker stops.
func (b *Broker) sweepLoop() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
			b.sweepPartitions()
		}
	}
}
