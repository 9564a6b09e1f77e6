package kafka

// DescribeTopicPartitions, version 0 (KIP-966; the Java admin client's
// describeTopics from Kafka 3.8 on): the topics asked for, or every topic
// when none is, sorted by name, with what Metadata tells of each (id,
// internal, partitions with leader, epoch, replicas and ISR; no eligible
// leader replicas, no offline replicas), a topic that does not exist
// UNKNOWN_TOPIC_OR_PARTITION. At most ResponsePartitionLimit partitions
// (at most 2,000, as Kafka's max.request.partition.size.limit) go in one
// answer, whose NextCursor names the topic and partition to ask from next;
// a request's Cursor starts there, and must name one of the topics asked
// for (INVALID_REQUEST otherwise).

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DescribeTopicPartitions.Int16(), 0, 0, serve(describeTopicPartitions))
}

// maxDescribedPartitions bounds the partitions of one answer.
const maxDescribedPartitions = 2000

func describeTopicPartitions(b *Broker, req *kmsg.DescribeTopicPartitionsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrDescribeTopicPartitionsResponse()
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	if len(req.Topics) > 0 {
		for _, t := range req.Topics {
			md.Topics = append(md.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(t.Topic)})
		}
		if c := req.Cursor; c != nil && !slices.ContainsFunc(req.Topics, func(t kmsg.DescribeTopicPartitionsRequestTopic) bool { return t.Topic == c.Topic }) {
			for _, t := range req.Topics {
				rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
				rt.Topic, rt.ErrorCode = kmsg.StringPtr(t.Topic), kerr.InvalidRequest.Code
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
	}
	m, err := metadata(b, md)
	if err != nil {
		return nil, err
	}
	topics := m.(*kmsg.MetadataResponse).Topics // by name: every one has it
	slices.SortStableFunc(topics, func(a, c kmsg.MetadataResponseTopic) int { return strings.Compare(*a.Topic, *c.Topic) })
	topics = slices.CompactFunc(topics, func(a, c kmsg.MetadataResponseTopic) bool { return *a.Topic == *c.Topic })

	left := int(req.ResponsePartitionLimit)
	if left <= 0 || left > maxDescribedPartitions {
		left = maxDescribedPartitions
	}
	for _, mt := range topics {
		name, first := *mt.Topic, int32(0)
		if c := req.Cursor; c != nil {
			if name < c.Topic {
				continue
			}
			if name == c.Topic {
				first = max(c.Partition, 0)
			}
		}
		if left == 0 { // the topics before took all: this one comes next
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: first}
			break
		}
		rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		rt.Topic, rt.TopicID, rt.IsInternal, rt.ErrorCode = mt.Topic, mt.TopicID, mt.IsInternal, mt.ErrorCode
		for _, mp := range mt.Partitions[min(int(first), len(mt.Partitions)):] {
			if left == 0 {
				resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: mp.Partition}
				break
			}
			rp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
			rp.ErrorCode, rp.Partition, rp.LeaderID, rp.LeaderEpoch = mp.ErrorCode, mp.Partition, mp.Leader, mp.LeaderEpoch
			rp.Replicas, rp.ISR = mp.Replicas, mp.ISR
			rp.EligibleLeaderReplicas, rp.LastKnownELR, rp.OfflineReplicas = []int32{}, []int32{}, []int32{}
			rt.Partitions = append(rt.Partitions, rp)
			left--
		}
		resp.Topics = append(resp.Topics, rt)
		if resp.NextCursor != nil {
			break
		}
	}
	return resp, nil
}
