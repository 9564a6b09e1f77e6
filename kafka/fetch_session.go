package kafka

// Fetch sessions (KIP-227, Fetch v7+). A consumer names its partitions
// once, in a full fetch with session epoch 0, and is given a session id;
// its later fetches (incremental, epoch 1, 2, ...) carry only the
// partitions whose fetch offset or max bytes changed and those to forget,
// and their responses carry only the partitions with something new for
// it: records, an error, or a high watermark, last stable offset or log
// start offset other than the one it was last told. In an incremental
// response the partitions that returned records move to the end of the
// session's order, so that a response's byte limit does not starve the
// later ones. Epoch -1 closes a session (and fetches without one);
// epoch 0 with a session id replaces that session. A session names its
// partitions as the fetch that made it did: by topic name (v7-v12) or id
// (v13+).
//
// An unknown session id is FETCH_SESSION_ID_NOT_FOUND and an epoch other
// than the session's next one INVALID_FETCH_SESSION_EPOCH; both are
// top-level errors with no partitions, after which clients start a new
// session. The cache holds at most maxFetchSessions sessions and
// maxSessionPartitions partitions over all of them; a new session that
// does not fit evicts the least recently used session idle for at least
// fetchSessionIdle, and otherwise is not made (session id 0: the client
// goes on with full fetches, which every client accepts).

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

const (
	maxFetchSessions     = 1000 // as Kafka's max.incremental.fetch.session.cache.slots
	maxSessionPartitions = 250_000
	fetchSessionIdle     = 2 * time.Minute // as Kafka's eviction of idle sessions
)

// fetchSessions is a broker's cache of fetch sessions.
type fetchSessions struct {
	mu    sync.Mutex
	byID  map[int32]*fetchSession
	parts int // partitions in all sessions

	maxSessions, maxParts int
	idle                  time.Duration
	now                   func() time.Time
}

func newFetchSessions() *fetchSessions {
	return &fetchSessions{byID: map[int32]*fetchSession{}, maxSessions: maxFetchSessions, maxParts: maxSessionPartitions,
		idle: fetchSessionIdle, now: time.Now}
}

// fetchSession is one client's session. mu guards everything but id,
// used and size, which fetchSessions.mu guards (size: the partitions the
// cache counts for it).
type fetchSession struct {
	id   int32
	used time.Time
	size int

	mu    sync.Mutex
	epoch int32 // the epoch the next fetch must carry
	ids   bool  // made by a fetch that names topics by id (v13+)
	order []*sessionPart
	byKey map[sessionKey]*sessionPart
}

// sessionKey names a partition by its topic's name (Fetch v7-v12) or id
// (v13+: the name is looked up at each fetch).
type sessionKey struct {
	topic string
	id    eventlog.UUID
	p     int32
}

// sessionPart is a partition of a session: where the client fetches from
// and what it was last told (hw -1 until its first answer).
type sessionPart struct {
	sessionKey
	offset   int64
	maxBytes int32
	epoch    int32 // the client's current leader epoch

	hw, lso, logStart int64
}

// fetchTarget is one partition a fetch reads, named by its topic's name
// or, from v13 on, id.
type fetchTarget struct {
	topic    string
	id       eventlog.UUID
	byID     bool // v13+: id names the topic (zero names none)
	p        int32
	offset   int64
	maxBytes int32
	epoch    int32        // the client's current leader epoch, -1 if not given
	sp       *sessionPart // nil without a session
}

// fetchPlan is what a fetch reads and how it answers: without a session,
// as a new session (everything, remembered), or incrementally (only what
// changed). A non-zero code answers at once, with nothing else.
type fetchPlan struct {
	targets     []fetchTarget
	session     *fetchSession
	incremental bool
	code        int16
}

// plan resolves a fetch's session, in the connection's order: a session's
// epoch is checked and moved on before the next request of the connection
// is looked at.
func (c *fetchSessions) plan(req *kmsg.FetchRequest) fetchPlan {
	if req.Version < 7 {
		return fetchPlan{targets: requestTargets(req)}
	}
	switch {
	case req.SessionEpoch == -1: // the last fetch of a session, or none
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		return fetchPlan{targets: requestTargets(req)}
	case req.SessionEpoch == 0: // a new session, replacing the one named
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		return c.create(requestTargets(req), req.Version >= 13)
	}
	s := c.get(req.SessionID)
	if s == nil {
		return fetchPlan{code: kerr.FetchSessionIDNotFound.Code}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.SessionEpoch != s.epoch {
		return fetchPlan{code: kerr.InvalidFetchSessionEpoch.Code}
	}
	if s.ids != (req.Version >= 13) {
		// A session names its partitions one way: Kafka's answer to a
		// fetch that names them the other, after which clients start anew.
		return fetchPlan{code: kerr.FetchSessionTopicIDError.Code}
	}
	added := 0
	for _, t := range requestTargets(req) {
		if s.set(t) {
			added++
		}
	}
	var removed map[*sessionPart]bool
	for _, t := range req.ForgottenTopics {
		for _, p := range t.Partitions {
			k := sessionKey{topic: t.Topic, p: p}
			if s.ids {
				k = sessionKey{id: t.TopicID, p: p}
			}
			if sp := s.byKey[k]; sp != nil {
				if removed == nil {
					removed = map[*sessionPart]bool{}
				}
				removed[sp] = true
				delete(s.byKey, k)
			}
		}
	}
	if removed != nil {
		s.order = slices.DeleteFunc(s.order, func(sp *sessionPart) bool { return removed[sp] })
	}
	if !c.resize(s, added-len(removed)) {
		// Grown past the cache: dropped. The client starts again, and its
		// new session is refused if it does not fit (full fetches then).
		return fetchPlan{code: kerr.FetchSessionIDNotFound.Code}
	}
	if s.epoch == math.MaxInt32 {
		s.epoch = 1
	} else {
		s.epoch++
	}
	return fetchPlan{targets: s.targets(), session: s, incremental: true}
}

// set adds a partition to the session or updates where its client fetches
// from; true if it was added.
func (s *fetchSession) set(t fetchTarget) bool {
	k := sessionKey{topic: t.topic, id: t.id, p: t.p}
	if sp := s.byKey[k]; sp != nil {
		sp.offset, sp.maxBytes, sp.epoch = t.offset, t.maxBytes, t.epoch
		return false
	}
	sp := &sessionPart{sessionKey: k, offset: t.offset, maxBytes: t.maxBytes, epoch: t.epoch, hw: -1}
	s.byKey[k] = sp
	s.order = append(s.order, sp)
	return true
}

// targets lists the session's partitions, in its order, for a fetch.
func (s *fetchSession) targets() []fetchTarget {
	out := make([]fetchTarget, len(s.order))
	for i, sp := range s.order {
		out[i] = fetchTarget{topic: sp.topic, id: sp.id, byID: s.ids, p: sp.p, offset: sp.offset, maxBytes: sp.maxBytes, epoch: sp.epoch, sp: sp}
	}
	return out
}

// requestTargets lists a request's partitions in its order; from v13 on
// by their topics' ids, with no name (fetchOnce looks it up).
func requestTargets(req *kmsg.FetchRequest) []fetchTarget {
	var out []fetchTarget
	for _, t := range req.Topics {
		name, id, byID := t.Topic, eventlog.UUID{}, req.Version >= 13
		if byID {
			name, id = "", t.TopicID
		}
		for _, p := range t.Partitions {
			out = append(out, fetchTarget{topic: name, id: id, byID: byID, p: p.Partition, offset: p.FetchOffset, maxBytes: p.PartitionMaxBytes, epoch: p.CurrentLeaderEpoch})
		}
	}
	return out
}

// create makes a session of targets (a partition named twice counts once,
// at its last mention) and plans its first, full fetch; without room, the
// fetch is planned without a session.
func (c *fetchSessions) create(targets []fetchTarget, ids bool) fetchPlan {
	s := &fetchSession{epoch: 1, ids: ids, byKey: make(map[sessionKey]*sessionPart, len(targets))}
	for _, t := range targets {
		s.set(t)
	}
	if !c.add(s) {
		return fetchPlan{targets: targets}
	}
	return fetchPlan{targets: s.targets(), session: s}
}

// add caches s under a new id if it fits, evicting idle sessions for it.
func (c *fetchSessions) add(s *fetchSession) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(s.order)
	for len(c.byID) >= c.maxSessions || c.parts+n > c.maxParts {
		if n > c.maxParts || !c.evictIdle() {
			return false
		}
	}
	for s.id == 0 || c.byID[s.id] != nil {
		s.id = rand.Int32N(math.MaxInt32) + 1
	}
	s.used, s.size = c.now(), n
	c.byID[s.id] = s
	c.parts += n
	return true
}

// evictIdle drops the least recently used session if it has been idle
// long enough.
func (c *fetchSessions) evictIdle() bool {
	var lru *fetchSession
	for _, s := range c.byID {
		if lru == nil || s.used.Before(lru.used) {
			lru = s
		}
	}
	if lru == nil || c.now().Sub(lru.used) < c.idle {
		return false
	}
	c.dropLocked(lru)
	return true
}

func (c *fetchSessions) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byID[id]
	if s != nil {
		s.used = c.now()
	}
	return s
}

func (c *fetchSessions) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.byID[id]; s != nil {
		c.dropLocked(s)
	}
}

func (c *fetchSessions) dropLocked(s *fetchSession) {
	delete(c.byID, s.id)
	c.parts -= s.size
}

// resize accounts for a session growing by delta partitions; if the cache
// cannot hold it, it drops the session and returns false.
func (c *fetchSessions) resize(s *fetchSession, delta int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID[s.id] != s {
		return true // dropped meanwhile: nothing counted
	}
	if delta > 0 && c.parts+delta > c.maxParts {
		c.dropLocked(s)
		return false
	}
	s.size += delta
	c.parts += delta
	return true
}

// told remembers parts, the answers to targets (the session's partitions,
// in a fetch planned by plan), as what the client was told, and returns
// which ones an incremental response leaves out: those with no records, no
// error and the offsets the client was last told. The partitions that
// returned records move to the end of the session's order.
func (s *fetchSession) told(targets []fetchTarget, parts []kmsg.FetchResponseTopicPartition, incremental bool) []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := make([]bool, len(parts))
	var moved map[*sessionPart]bool
	for i := range parts {
		rp, sp := &parts[i], targets[i].sp
		news := rp.ErrorCode != 0 || len(rp.RecordBatches) > 0 ||
			rp.HighWatermark != sp.hw || rp.LastStableOffset != sp.lso || rp.LogStartOffset != sp.logStart
		sp.hw, sp.lso, sp.logStart = rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset
		if !incremental {
			continue
		}
		left[i] = !news
		if len(rp.RecordBatches) > 0 && s.byKey[sp.sessionKey] == sp {
			if moved == nil {
				moved = map[*sessionPart]bool{}
			}
			moved[sp] = true
		}
	}
	if moved != nil {
		order := make([]*sessionPart, 0, len(s.order))
		for _, sp := range s.order {
			if !moved[sp] {
				order = append(order, sp)
			}
		}
		for _, t := range targets {
			if moved[t.sp] {
				order = append(order, t.sp)
			}
		}
		s.order = order
	}
	return left
}

// stats returns the sessions and partitions cached.
func (c *fetchSessions) stats() (sessions, parts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID), c.parts
}
