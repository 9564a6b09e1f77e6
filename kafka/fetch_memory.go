package kafka

import "sync"

// DefaultFetchMemory bounds the record bytes all fetches hold at once:
// read from the logs and not yet written to their connections.
const DefaultFetchMemory = 512 << 20

// fetchMemory is the budget of record bytes that fetch responses hold, from
// their read until their frame is written. Kafka sends records from the
// page cache to the socket (sendfile) and holds none; chronik copies them,
// so without a bound a thousand consumers asking 55 MiB each would make
// the node allocate 55 GB. A fetch takes what is left, up to what it asks,
// and reads no more than it got; when nothing is left it waits, like a
// fetch without data, until a response gives bytes back or its wait ends.
// A partition's first batch still goes whole into an empty response, even
// beyond the budget: every fetch makes progress, and the budget is
// exceeded by at most one batch per response.
type fetchMemory struct {
	size    int64
	mu      sync.Mutex
	avail   int64
	freed   chan struct{} // closed and replaced when bytes come back, if watched
	watched bool          // a fetch waits on freed
}

func newFetchMemory(n int64) *fetchMemory {
	return &fetchMemory{size: n, avail: n, freed: make(chan struct{})}
}

// take grants up to n bytes: fewer, or none, when less is left.
func (m *fetchMemory) take(n int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n = max(0, min(n, m.avail))
	m.avail -= n
	return n
}

// settle turns a grant into what was used of it: the rest comes back, or
// what went beyond it (a first batch larger than granted) is taken too.
func (m *fetchMemory) settle(granted, used int64) {
	m.give(granted - used)
}

// give returns n bytes (n < 0 takes them) and wakes the fetches waiting.
func (m *fetchMemory) give(n int64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	m.avail += n
	if n > 0 && m.watched {
		close(m.freed)
		m.freed, m.watched = make(chan struct{}), false
	}
	m.mu.Unlock()
}

// wait returns a channel closed when bytes are next given back.
func (m *fetchMemory) wait() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watched = true
	return m.freed
}

// inUse is what fetch responses hold now.
func (m *fetchMemory) inUse() int64 { return m.size - m.left() }

// left is what the budget has left (negative when a first batch went
// beyond it).
func (m *fetchMemory) left() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.avail
}
