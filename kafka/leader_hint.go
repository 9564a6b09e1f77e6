package kafka

// Leader hints (KIP-951): a produce (v10+) or fetch (v12+; the endpoints
// v16+) answered NOT_LEADER_OR_FOLLOWER also says which broker leads the
// partition now, with its epoch and endpoint, so that the client goes
// there without asking for metadata first.

import (
	"github.com/chronik-stream/chronik/eventlog"
)

// leaderHint is the leader of a partition and where it listens.
type leaderHint struct {
	id, epoch int32
	host      string
	port      int32
	rack      *string
}

// leaderHint returns who leads partition p of topic; false if no live
// broker does.
func (b *Broker) leaderHint(topic string, p int32) (h leaderHint, ok bool) {
	b.meta.View(func(s *eventlog.State) {
		tp := s.Topics[topic]
		if tp == nil || p < 0 || int(p) >= len(tp.Partitions) {
			return
		}
		part := tp.Partitions[p]
		br := s.Brokers[part.Leader]
		if part.Leader < 0 || br == nil || br.Fenced {
			return
		}
		h.id, h.epoch = part.Leader, part.LeaderEpoch
		h.host, h.port, h.rack = endpoint(br)
		ok = true
	})
	return h, ok
}

// leaderHints gathers the leaders named in one response, once each.
type leaderHints struct {
	seen  map[int32]bool
	hints []leaderHint
}

// note looks up who leads partition p of topic, answered
// NOT_LEADER_OR_FOLLOWER, for the partition's answer (its id and epoch)
// and the response's brokers; false if no live broker leads it.
func (l *leaderHints) note(b *Broker, topic string, p int32) (id, epoch int32, ok bool) {
	h, ok := b.leaderHint(topic, p)
	if !ok {
		return 0, 0, false
	}
	if l.seen == nil {
		l.seen = map[int32]bool{}
	}
	if !l.seen[h.id] {
		l.seen[h.id] = true
		l.hints = append(l.hints, h)
	}
	return h.id, h.epoch, true
}
