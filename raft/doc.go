// Package raft is chronik's hand-written Raft: it elects the controller,
// and replicates metadata itself when the fast path is off.
//
// Node is the pure core, in the manner of etcd's raft: Step (a message
// from a peer) and Tick (a unit of time) go in; Ready says what to persist
// (term, vote, commit; entries; a snapshot), what to send, what is
// committed and applied, and role changes; Advance says it is done. It has
// no goroutines, clocks, sockets or disks, so that tests drive it
// deterministically.
//
// Elections use pre-vote (a node that could not win does not raise the
// term), check-quorum (a leader that stops hearing a majority steps down),
// leader stickiness (a node that hears a live leader ignores campaigns) and
// leadership transfer. A vote goes only to a candidate whose log is at
// least as up to date; the log compared is Config.Log when set (the
// metadata log's last epoch and offset on the fast path), else Raft's own.
// Replication sends appends with a fast conflict hint, commits by a
// majority of persisted copies and only entries of the leader's term
// (Raft's Figure 8 rule), sends a snapshot to a follower that needs
// compacted entries, and bounds the appends in flight to each follower.
//
// Tests: scenario scripts in testdata/ (the message trace is the expected
// output), and a deterministic simulation with a lossy, reordering,
// duplicating, partitioning network and crashes, checking the safety
// invariants after every step.
package raft
