// Package statelog compacts the broker's internal logs of keyed state
// (the offsets partition, the transaction state partition) by copying: the
// state a replay of the log gives is appended anew after a roll and, once
// durable, the segments before it are deleted.
package statelog

import (
	"sync"

	"github.com/chronik-stream/chronik/segment"
)

// Compactor compacts one log; its owner provides the replay and the copy.
type Compactor struct {
	Log *segment.Log
	// MinBytes is the size from which the log is compacted.
	MinBytes int64

	mu   sync.Mutex // one compaction at a time
	last int64      // the log's size after the last compaction
}

// Owner is what a compaction needs from the log's owner.
type Owner struct {
	// Hold is the owner's lock that orders its appends: held from the roll
	// to the copy, so that no change comes between the state read and its
	// copy. Closed, called under it, stops the compaction.
	Hold   sync.Locker
	Closed func() bool
	// Replay reads the durable log from offset from into a scratch state
	// (the same on each call, continued) and returns the offset after it.
	Replay func(from int64) (int64, error)
	// Copy appends the scratch state to the log, under Hold, and returns
	// the waits for its writes.
	Copy func() []func() error
}

// Run compacts the log if it is at least MinBytes and twice its size
// after the last compaction. The state is taken from a replay of the log,
// not from the owner's memory (which takes a change only once durable, so
// may lag the log); a crash at any point leaves a log that replays to the
// same state: the old segments go only after the copy is durable, and
// replaying old records before the copy is harmless. It returns whether it
// compacted, and the log's size before and after.
func (c *Compactor) Run(o Owner) (done bool, before, after int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before = c.Log.Size()
	if before < c.MinBytes || before < 2*c.last {
		return false, before, before, nil
	}
	// Replay what is durable now without holding the owner up, then,
	// holding it, the rest up to the roll.
	next, err := o.Replay(c.Log.StartOffset())
	if err != nil {
		return false, before, before, err
	}
	o.Hold.Lock()
	if o.Closed() {
		o.Hold.Unlock()
		return false, before, before, nil
	}
	at, err := c.Log.Roll()
	if err == nil {
		_, err = o.Replay(next)
	}
	var waits []func() error
	if err == nil {
		waits = o.Copy()
	}
	o.Hold.Unlock()
	for _, wait := range waits {
		if err == nil {
			err = wait()
		}
	}
	if err == nil {
		_, err = c.Log.DeleteSegmentsBefore(at)
	}
	if err != nil {
		return false, before, before, err
	}
	c.last = c.Log.Size()
	return true, before, c.last, nil
}
