package kafka

// AlterPartitionReassignments, versions 0-1: moving a partition to other
// brokers means copying its data, which chronik does not do yet, so a new
// assignment is INVALID_REPLICA_ASSIGNMENT saying so; the current one
// again is done at once, as in Kafka. Cancelling is
// NO_REASSIGNMENT_IN_PROGRESS (none ever is), an unknown partition
// UNKNOWN_TOPIC_OR_PARTITION, replicas that are not distinct registered
// brokers INVALID_REPLICA_ASSIGNMENT, and a new replica count while the
// request (v1) forbids it INVALID_REPLICATION_FACTOR.

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.AlterPartitionAssignments.Int16(), 0, 1, serve(alterPartitionReassignments))
}

func alterPartitionReassignments(b *Broker, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrAlterPartitionAssignmentsResponse()
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	b.meta.View(func(s *eventlog.State) {
		for _, t := range req.Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition = p.Partition
				if code, msg := reassign(s, t.Topic, p.Partition, p.Replicas, allowRF); code != 0 {
					rp.ErrorCode, rp.ErrorMessage = code, &msg
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	})
	return resp, nil
}

// reassign says whether topic-p may go to replicas, and why not.
func reassign(s *eventlog.State, topic string, p int32, replicas []int32, allowRF bool) (int16, string) {
	tp := s.Topics[topic]
	if tp == nil || p < 0 || int(p) >= len(tp.Partitions) {
		return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("no such partition as %s-%d", topic, p)
	}
	if replicas == nil {
		return kerr.NoReassignmentInProgress.Code, fmt.Sprintf("no reassignment of %s-%d is in progress", topic, p)
	}
	current := tp.Partitions[p].Replicas
	if len(replicas) == 0 {
		return kerr.InvalidReplicaAssignment.Code, "the replicas are empty"
	}
	for i, r := range replicas {
		if s.Brokers[r] == nil {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("broker %d is not registered", r)
		}
		if slices.Contains(replicas[:i], r) {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("broker %d is listed twice", r)
		}
	}
	switch {
	case !allowRF && len(replicas) != len(current):
		return kerr.InvalidReplicationFactor.Code, fmt.Sprintf("%s-%d has %d replicas and the request does not allow changing that", topic, p, len(current))
	case slices.Equal(replicas, current):
		return 0, ""
	}
	return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("%s-%d stays on brokers %v: moving a partition between brokers (copying its data) is not supported yet", topic, p, current)
}
