package segmenttest

import (
	"os"
	"strings"
	"sync"

	"github.com/chronik-stream/chronik/segment"
)

// StallingFS is a MemFS whose opens of a path containing a given string
// wait until Free, the way a long recovery holds a log's open.
type StallingFS struct {
	*MemFS
	stall   string
	stalled chan struct{}
	once    sync.Once
	release chan struct{}
	freed   sync.Once
}

// NewStallingFS returns an empty StallingFS that holds opens of paths
// containing stall.
func NewStallingFS(stall string) *StallingFS {
	return &StallingFS{MemFS: NewMemFS(), stall: stall, stalled: make(chan struct{}), release: make(chan struct{})}
}

// Stalled is closed once an open is being held.
func (s *StallingFS) Stalled() <-chan struct{} { return s.stalled }

// Free lets the held opens, and all later ones, go on.
func (s *StallingFS) Free() { s.freed.Do(func() { close(s.release) }) }

// OpenFile holds an open of a matching path until Free.
func (s *StallingFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	if strings.Contains(name, s.stall) {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
	}
	return s.MemFS.OpenFile(name, flag, perm)
}
