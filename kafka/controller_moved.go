package kafka

import (
	"time"

	"github.com/chronik-stream/chronik/eventlog"
)

// When the controller moves, a client that keeps connections open to the
// other brokers may go on sending its admin requests to the controller its
// last Metadata response named, and never ask again: librdkafka (2.0 and
// 2.15 alike) asks for metadata when it connects and otherwise every
// topic.metadata.refresh.interval.ms (5 minutes), and meanwhile waits "for
// controller", trying to connect to the dead one. Kafka in KRaft mode names
// a random live broker as the controller (every broker forwards), which
// makes that rarer; chronik names the controller itself, one hop away. So
// once the controller this node names changes, the node closes each client
// connection that has sent it nothing since, once it has been idle for
// staleAfter: its client connects again when it next needs to and asks for
// metadata as it does. A connection in use is left alone (a request read
// or answered since the move, a long poll), a request that arrives as the
// wait ends is read (conn.go), and the other nodes' relay connections are
// theirs to manage.
const (
	staleAfter   = time.Second
	watchEvery   = 250 * time.Millisecond
	staleLookFor = time.Minute // after a move, connections are looked at for this long
	noController = int32(0)    // Controller.Leader before any is known
)

// watchController closes stale connections after each move of the
// controller, until the server closes.
func (s *Server) watchController() {
	defer s.wg.Done()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	named := s.namedController()
	var moved time.Time
	for {
		select {
		case <-s.closed.Done():
			return
		case <-t.C:
		}
		if now := s.namedController(); now > noController && now != named {
			if named > noController {
				moved = time.Now()
				s.log.Info("the controller moved: client connections idle since are closed, so that their clients ask where it is", "from", named, "to", now)
			}
			named = now
		}
		if !moved.IsZero() && time.Since(moved) < staleLookFor {
			s.closeStale(moved)
		}
	}
}

// namedController is the controller this node's Metadata answers name.
func (s *Server) namedController() (id int32) {
	s.b.meta.View(func(st *eventlog.State) { id = st.Controller.Leader })
	return id
}

// closeStale ends the wait for a next request of every client connection
// that has had none since moved and none for staleAfter.
func (s *Server) closeStale(moved time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.mu.Lock()
		if c.waiting && !c.relay && !c.nudged && !c.writing && len(c.queue) == 0 &&
			c.lastRequest.Before(moved) && now.Sub(c.lastRequest) >= staleAfter {
			c.nudged = true
			c.nc.SetReadDeadline(time.Unix(1, 0)) // long gone: the read ends now
		}
		c.mu.Unlock()
	}
}
