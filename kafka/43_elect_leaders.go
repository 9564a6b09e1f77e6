package kafka

// ElectLeaders, versions 0-2: elects a partition's preferred leader (its
// first replica, if in sync and on an unfenced broker) or, for an unclean
// election (type 1, v1+), any in-sync replica on an unfenced broker, else
// any replica there, as PartitionChanged events with the next leader
// epoch, all in one batch; the controller does it (other nodes forward
// the request). A partition already led as asked is ELECTION_NOT_NEEDED;
// one with nobody to elect PREFERRED_LEADER_NOT_AVAILABLE or
// ELIGIBLE_LEADERS_NOT_AVAILABLE (with one replica per partition, a
// fenced broker's partitions come back to it by themselves when it
// returns). A null topic list asks for every partition and is answered
// only those where an election happened or failed, as Kafka does.

import (
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.ElectLeaders.Int16(), 0, 2, serve(electLeaders))
}

func electLeaders(b *Broker, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrElectLeadersResponse()
	if req.ElectionType != 0 && req.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	unclean := req.ElectionType == 1
	var events []eventlog.Event
	var made [][2]int // where each event's partition is in resp.Topics
	b.viewLatest(func(s *eventlog.State) {
		asked := req.Topics
		if asked == nil {
			names := make([]string, 0, len(s.Topics))
			for name := range s.Topics {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				t := kmsg.NewElectLeadersRequestTopic()
				t.Topic = name
				for p := range s.Topics[name].Partitions {
					t.Partitions = append(t.Partitions, int32(p))
				}
				asked = append(asked, t)
			}
		}
		for ti, t := range asked {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition = p
				ev, code, msg := elect(s, t.Topic, p, unclean)
				if ev != nil {
					events = append(events, ev)
					made = append(made, [2]int{ti, len(rt.Partitions)})
				}
				rp.ErrorCode = code
				if msg != "" {
					rp.ErrorMessage = &msg
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	})
	if len(events) > 0 {
		if err := b.appendMeta(nil, events...); err != nil {
			code, msg := b.metaCode(err, kerr.UnknownServerError.Code), err.Error()
			for _, at := range made {
				rp := &resp.Topics[at[0]].Partitions[at[1]]
				rp.ErrorCode, rp.ErrorMessage = code, &msg
			}
		}
	}
	if req.Topics == nil {
		for i := range resp.Topics {
			rt := &resp.Topics[i]
			rt.Partitions = slices.DeleteFunc(rt.Partitions, func(rp kmsg.ElectLeadersResponseTopicPartition) bool {
				return rp.ErrorCode == kerr.ElectionNotNeeded.Code
			})
		}
	}
	return resp, nil
}

// elect returns the change that elects topic-p's leader, or why there is
// none to make.
func elect(s *eventlog.State, topic string, p int32, unclean bool) (*eventlog.PartitionChanged, int16, string) {
	tp := s.Topics[topic]
	if tp == nil || p < 0 || int(p) >= len(tp.Partitions) {
		return nil, kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("no such partition as %s-%d", topic, p)
	}
	part := tp.Partitions[p]
	up := func(id int32) bool {
		br := s.Brokers[id]
		return br != nil && !br.Fenced
	}
	change := func(leader int32, isr []int32) *eventlog.PartitionChanged {
		return &eventlog.PartitionChanged{Topic: topic, Partition: p, Replicas: part.Replicas, ISR: isr, Leader: leader, LeaderEpoch: part.LeaderEpoch + 1}
	}
	if !unclean {
		if len(part.Replicas) == 0 {
			return nil, kerr.PreferredLeaderNotAvailable.Code, ""
		}
		preferred := part.Replicas[0]
		switch {
		case part.Leader == preferred:
			return nil, kerr.ElectionNotNeeded.Code, ""
		case slices.Contains(part.ISR, preferred) && up(preferred):
			return change(preferred, part.ISR), 0, ""
		}
		return nil, kerr.PreferredLeaderNotAvailable.Code, fmt.Sprintf("the preferred leader of %s-%d, broker %d, is not in sync or not available", topic, p, preferred)
	}
	if part.Leader != -1 {
		return nil, kerr.ElectionNotNeeded.Code, ""
	}
	for _, r := range part.ISR {
		if up(r) {
			return change(r, part.ISR), 0, ""
		}
	}
	for _, r := range part.Replicas {
		if up(r) {
			return change(r, []int32{r}), 0, ""
		}
	}
	return nil, kerr.EligibleLeadersNotAvailable.Code, fmt.Sprintf("no replica of %s-%d is on an available broker", topic, p)
}
