package raft

// raftLog is a node's log in memory: a snapshot standing for the entries
// up to its index, then the entries after it. stable is the last index the
// driver has persisted; entries after it go out in the next Ready.
type raftLog struct {
	snap      Snapshot
	entries   []Entry // entries[i].Index == snap.Index+1+i
	committed uint64
	applied   uint64 // the last index handed out to apply
	stable    uint64
	// snapUnstable is a snapshot received and not yet persisted.
	snapUnstable bool
}

func (l *raftLog) lastIndex() uint64 { return l.snap.Index + uint64(len(l.entries)) }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

// term is the term of the entry at i; false when i is compacted away
// (below the snapshot) or beyond the end.
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snap.Index:
		return l.snap.Term, true
	case i < l.snap.Index || i > l.lastIndex():
		return 0, false
	}
	return l.entries[i-l.snap.Index-1].Term, true
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	got, ok := l.term(i)
	return ok && got == t
}

// upToDate reports whether a log ending at (lastTerm, lastIndex) is at
// least as up to date as this one (Raft §5.4.1).
func upToDate(myTerm, myIndex, lastTerm, lastIndex uint64) bool {
	return lastTerm > myTerm || lastTerm == myTerm && lastIndex >= myIndex
}

// slice returns the entries in [lo, hi); lo must be above the snapshot.
func (l *raftLog) slice(lo, hi uint64) []Entry {
	if lo > hi || lo <= l.snap.Index {
		return nil
	}
	hi = min(hi, l.lastIndex()+1)
	return l.entries[lo-l.snap.Index-1 : hi-l.snap.Index-1]
}

// appendAfter puts ents after index prev (whose term the caller checked),
// keeping matching entries and truncating at the first conflict. Entries
// already committed never conflict (the caller's invariant).
func (l *raftLog) appendAfter(prev uint64, ents []Entry) {
	for i, e := range ents {
		if e.Index <= l.snap.Index {
			continue
		}
		if t, ok := l.term(e.Index); ok && t == e.Term {
			continue
		}
		// First new or conflicting entry: everything from it on is replaced.
		keep := e.Index - l.snap.Index - 1
		l.entries = append(l.entries[:keep:keep], ents[i:]...)
		if l.stable >= e.Index {
			l.stable = e.Index - 1
		}
		return
	}
	_ = prev
}

// unstable returns the entries not yet persisted.
func (l *raftLog) unstable() []Entry {
	if l.stable >= l.lastIndex() {
		return nil
	}
	return l.slice(max(l.stable, l.snap.Index)+1, l.lastIndex()+1)
}

// restore replaces the log with a snapshot.
func (l *raftLog) restore(s Snapshot) {
	l.snap = s
	l.entries = nil
	l.committed = max(l.committed, s.Index)
	l.applied = max(l.applied, s.Index)
	l.stable = s.Index
	l.snapUnstable = true
}

// compact drops the entries up to index, which the application has
// applied and captured in data.
func (l *raftLog) compact(index uint64, data []byte) bool {
	if index <= l.snap.Index || index > l.applied {
		return false
	}
	t, _ := l.term(index)
	l.entries = append([]Entry(nil), l.entries[index-l.snap.Index:]...)
	l.snap = Snapshot{Index: index, Term: t, Data: data}
	return true
}

// firstIndexOfTerm returns the first index at or below i whose term is t,
// walking back while the term stays t.
func (l *raftLog) firstIndexOfTerm(i, t uint64) uint64 {
	for i > l.snap.Index+1 {
		if pt, ok := l.term(i - 1); !ok || pt != t {
			break
		}
		i--
	}
	return i
}

// lastIndexOfTerm returns the last index whose term is t, or 0 when the
// log has none.
func (l *raftLog) lastIndexOfTerm(t uint64) uint64 {
	for i := l.lastIndex(); i > l.snap.Index; i-- {
		got, _ := l.term(i)
		if got == t {
			return i
		}
		if got < t {
			return 0
		}
	}
	return 0
}
