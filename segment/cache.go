package segment

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// DefaultMaxMappedSegments caps how many sealed segments one process keeps
// mapped at once; the kernel's default limit is 65,530 maps per process.
const DefaultMaxMappedSegments = 1024

// mapCache maps sealed segments read-only on demand and unmaps the least
// recently used ones beyond its cap. A mapping in use by a reader is never
// unmapped; the cap may be exceeded while that many are in use.
type mapCache struct {
	fs  FS
	max int
	log *slog.Logger

	mu     sync.Mutex
	clock  uint64
	mapped map[*segment]struct{}
}

func newMapCache(fs FS, max int, log *slog.Logger) *mapCache {
	if max <= 0 {
		max = DefaultMaxMappedSegments
	}
	return &mapCache{fs: fs, max: max, log: log, mapped: make(map[*segment]struct{})}
}

// acquire returns the segment's bytes and indexes, mapping it if needed.
// The caller must release it.
func (c *mapCache) acquire(s *segment, size int64, next int64, interval int) ([]byte, File, *indexes, error) {
	v := &s.sealed
	v.mu.Lock()
	if v.removed {
		v.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("segment: %s was deleted", s.path)
	}
	if v.m == nil && size > 0 {
		if err := c.mapLocked(s, size, next, interval); err != nil {
			v.mu.Unlock()
			return nil, nil, nil, err
		}
	}
	v.refs.Add(1)
	c.mu.Lock()
	c.clock++
	v.lastUse = c.clock
	c.mu.Unlock()
	var data []byte
	if v.m != nil {
		data = v.m.Bytes()[:size]
	}
	idx, f := v.idx, v.f
	v.mu.Unlock()
	if idx == nil {
		empty := newIndexes()
		idx = &empty
	}
	c.evict()
	return data, f, idx, nil
}

func (c *mapCache) mapLocked(s *segment, size int64, next int64, interval int) error {
	v := &s.sealed
	f, err := c.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("segment: open sealed segment: %w", err)
	}
	m, err := f.Map(int(size), false)
	if err != nil {
		f.Close()
		return err
	}
	idx, err := loadIndexes(c.fs, c.log, s, m.Bytes()[:size], next, interval)
	if err != nil {
		m.Unmap()
		f.Close()
		return err
	}
	v.f, v.m, v.idx = f, m, &idx
	c.mu.Lock()
	c.mapped[s] = struct{}{}
	c.mu.Unlock()
	return nil
}

func (c *mapCache) release(s *segment) {
	v := &s.sealed
	v.mu.Lock()
	if v.refs.Add(-1) == 0 && v.removed {
		c.unmapLocked(s)
	}
	v.mu.Unlock()
}

// forget unmaps a segment that is being deleted or closed, now or when its
// last reader releases it.
func (c *mapCache) forget(s *segment) {
	v := &s.sealed
	v.mu.Lock()
	v.removed = true
	if v.refs.Load() == 0 {
		c.unmapLocked(s)
	}
	v.mu.Unlock()
}

func (c *mapCache) unmapLocked(s *segment) {
	v := &s.sealed
	if v.m == nil {
		return
	}
	v.m.Unmap()
	v.f.Close()
	v.m, v.f, v.idx = nil, nil, nil
	c.mu.Lock()
	delete(c.mapped, s)
	c.mu.Unlock()
}

// evict unmaps least recently used idle segments while over the cap.
func (c *mapCache) evict() {
	for {
		c.mu.Lock()
		if len(c.mapped) <= c.max {
			c.mu.Unlock()
			return
		}
		var victim *segment
		for s := range c.mapped {
			if s.sealed.refs.Load() == 0 && (victim == nil || s.sealed.lastUse < victim.sealed.lastUse) {
				victim = s
			}
		}
		c.mu.Unlock()
		if victim == nil {
			return
		}
		v := &victim.sealed
		if !v.mu.TryLock() {
			return
		}
		if v.refs.Load() == 0 {
			c.unmapLocked(victim)
		}
		v.mu.Unlock()
	}
}

// mappedCount is the number of sealed segments mapped now.
func (c *mapCache) mappedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mapped)
}
