package kafka

// ListPartitionReassignments, version 0: no partition is ever being
// reassigned (AlterPartitionReassignments moves none yet), so the answer
// lists none, for every topic or those asked, as Kafka answers when none
// is in progress.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.ListPartitionReassignments.Int16(), 0, 0, serve(func(_ *Broker, _ *kmsg.ListPartitionReassignmentsRequest) (kmsg.Response, error) {
		return kmsg.NewPtrListPartitionReassignmentsResponse(), nil
	}))
}
