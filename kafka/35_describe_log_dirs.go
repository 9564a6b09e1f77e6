package kafka

// DescribeLogDirs, versions 0-4: the node has one log directory, its data
// directory, with the size of each partition it holds (the bytes of its
// segments' batches; offset lag 0: there are no future replicas) and, from
// v4, the file system's total and usable bytes. No topics asked (null) is
// every partition the node leads, the internal ones included; partitions
// it does not hold are left out, as Kafka leaves out those not in its
// directories.

import (
	"path/filepath"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
)

func init() {
	register(kmsg.DescribeLogDirs.Int16(), 0, 4, serve(describeLogDirs))
}

func describeLogDirs(b *Broker, req *kmsg.DescribeLogDirsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeLogDirsResponse()
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.store.Dir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir.Dir, &fs); err == nil {
		dir.TotalBytes, dir.UsableBytes = int64(fs.Blocks)*int64(fs.Bsize), int64(fs.Bavail)*int64(fs.Bsize)
	}
	wanted := req.Topics
	if wanted == nil {
		wanted = b.ledPartitions()
	}
	for _, t := range wanted {
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			l, code := b.partition(t.Topic, p)
			if code != 0 {
				continue // not held here
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p, l.Size()
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, rt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// ledPartitions lists the partitions this node leads, the internal ones
// included, by topic name.
func (b *Broker) ledPartitions() []kmsg.DescribeLogDirsRequestTopic {
	out := []kmsg.DescribeLogDirsRequestTopic{
		{Topic: eventlog.TopicName, Partitions: []int32{eventlog.PartitionID}},
		{Topic: group.Topic, Partitions: []int32{0}},
	}
	out = append(out, kmsg.DescribeLogDirsRequestTopic{Topic: txn.Topic, Partitions: []int32{0}})
	b.meta.View(func(s *eventlog.State) {
		for name, tp := range s.Topics {
			t := kmsg.DescribeLogDirsRequestTopic{Topic: name}
			for i, p := range tp.Partitions {
				if p.Leader == b.cfg.NodeID {
					t.Partitions = append(t.Partitions, int32(i))
				}
			}
			if len(t.Partitions) > 0 {
				out = append(out, t)
			}
		}
	})
	sort.Slice(out[2:], func(i, j int) bool { return out[2+i].Topic < out[2+j].Topic })
	return out
}
