package cluster

import (
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// reconcileBrokers, on the controller: registers brokers gossip reports
// that the metadata lacks (or with a changed address), unfences those
// back, and fences those failed for longer than FenceAfter.
func (n *Node) reconcileBrokers() {
	n.mu.Lock()
	if !n.leading {
		n.mu.Unlock()
		return
	}
	ctrl := n.ctrl
	live := map[int32]string{n.cfg.ID: n.cfg.KafkaAddr}
	for id, m := range n.members {
		live[id] = m.KafkaAddr
	}
	var overdue []int32
	for id, at := range n.failed {
		if _, back := live[id]; back {
			// Gossip has it again: a grace noted for it while it was
			// away (or in a race with its return) is over, or it would
			// be fenced and unfenced again and again.
			delete(n.failed, id)
			continue
		}
		if time.Since(at) >= n.cfg.FenceAfter {
			overdue = append(overdue, id)
		}
	}
	n.mu.Unlock()
	var events []eventlog.Event
	var missing []int32
	n.cfg.Meta.View(func(s *eventlog.State) {
		for id, b := range s.Brokers {
			if _, ok := live[id]; !ok && !b.Fenced {
				missing = append(missing, id)
			}
		}
		for id, addr := range live {
			ep, err := endpoint(addr)
			if err != nil {
				n.lg.Warn("controller: bad Kafka address in gossip", "node", id, "address", addr)
				continue
			}
			b := s.Brokers[id]
			switch {
			case b == nil || len(b.Endpoints) != 1 || b.Endpoints[0] != ep:
				events = append(events, &eventlog.BrokerRegistered{BrokerID: id, Incarnation: eventlog.NewUUID(), Endpoints: []eventlog.Endpoint{ep}})
			case b.Fenced && (ctrl == nil || ctrl.CaughtUp(id)):
				// Back, and (on the fast path) caught up with the metadata.
				events = append(events, &eventlog.BrokerUnfenced{BrokerID: id})
				events = append(events, leadersBack(s, id)...)
			}
		}
		for _, id := range overdue {
			if b := s.Brokers[id]; b != nil && !b.Fenced {
				events = append(events, &eventlog.BrokerFenced{BrokerID: id})
				events = append(events, leadersAway(s, id)...)
			}
		}
	})
	// Brokers the metadata has and gossip does not (they failed before
	// this node led): their grace starts now.
	n.mu.Lock()
	for _, id := range missing {
		_, failed := n.failed[id]
		if _, back := n.members[id]; !failed && !back {
			n.failed[id] = time.Now()
		}
	}
	n.mu.Unlock()
	if len(events) > 0 {
		// One batch: a broker's fencing and its partitions' new leaders
		// commit together.
		if _, err := n.Append(10*time.Second, events...); err != nil {
			n.lg.Warn("controller: cannot record broker changes", "events", len(events), "error", err)
			return
		}
		logBrokerChanges(n.lg, events, n.cfg.FenceAfter)
	}
}

// logBrokerChanges tells the operator what a committed batch of
// reconcileBrokers did: a line for each broker, naming the partitions
// whose leader that change moved (reconcileBrokers puts them after their
// broker's event).
func logBrokerChanges(lg *slog.Logger, events []eventlog.Event, grace time.Duration) {
	var msg string
	var args []any
	var moved, leaderless []string
	emit := func() {
		if msg != "" {
			if len(moved) > 0 {
				args = append(args, "new_leaders", partitionList(moved))
			}
			if len(leaderless) > 0 {
				args = append(args, "without_leader", partitionList(leaderless))
			}
			lg.Info(msg, args...)
		}
		msg, args, moved, leaderless = "", nil, nil, nil
	}
	for _, e := range events {
		switch e := e.(type) {
		case *eventlog.PartitionChanged:
			tp := e.Topic + "-" + strconv.Itoa(int(e.Partition))
			if e.Leader < 0 {
				leaderless = append(leaderless, tp)
			} else {
				moved = append(moved, tp+"→"+strconv.Itoa(int(e.Leader)))
			}
		case *eventlog.BrokerRegistered:
			emit()
			addrs := make([]string, len(e.Endpoints))
			for i, ep := range e.Endpoints {
				addrs[i] = net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port)))
			}
			msg, args = "controller: registered broker", []any{"broker", e.BrokerID, "kafka_addr", strings.Join(addrs, ",")}
		case *eventlog.BrokerFenced:
			emit()
			msg, args = "controller: fenced broker: gossip reported it failed for longer than the grace", []any{"broker", e.BrokerID, "grace", grace}
		case *eventlog.BrokerUnfenced:
			emit()
			msg, args = "controller: unfenced broker: it is back and caught up", []any{"broker", e.BrokerID}
		}
	}
	emit()
}

// maxLoggedPartitions bounds the partitions a log line names.
const maxLoggedPartitions = 20

func partitionList(ps []string) string {
	if len(ps) <= maxLoggedPartitions {
		return strings.Join(ps, " ")
	}
	return strings.Join(ps[:maxLoggedPartitions], " ") + " and " + strconv.Itoa(len(ps)-maxLoggedPartitions) + " more"
}

// leadersAway moves the partitions a fenced broker leads to another
// unfenced in-sync replica, or leaves them without a leader (-1: clients
// are told to wait) when it held the only copy.
func leadersAway(s *eventlog.State, fenced int32) []eventlog.Event {
	var out []eventlog.Event
	for _, name := range sortedTopics(s) {
		for i, p := range s.Topics[name].Partitions {
			if p.Leader != fenced {
				continue
			}
			next := int32(-1)
			for _, r := range p.ISR {
				if b := s.Brokers[r]; r != fenced && b != nil && !b.Fenced {
					next = r
					break
				}
			}
			out = append(out, &eventlog.PartitionChanged{Topic: name, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR, Leader: next, LeaderEpoch: p.LeaderEpoch + 1})
		}
	}
	return out
}

// leadersBack gives leaderless partitions back to a broker that returned
// and is in their in-sync replicas.
func leadersBack(s *eventlog.State, back int32) []eventlog.Event {
	var out []eventlog.Event
	for _, name := range sortedTopics(s) {
		for i, p := range s.Topics[name].Partitions {
			if p.Leader == -1 && slices.Contains(p.ISR, back) {
				out = append(out, &eventlog.PartitionChanged{Topic: name, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR, Leader: back, LeaderEpoch: p.LeaderEpoch + 1})
			}
		}
	}
	return out
}

func sortedTopics(s *eventlog.State) []string {
	names := make([]string, 0, len(s.Topics))
	for name := range s.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
