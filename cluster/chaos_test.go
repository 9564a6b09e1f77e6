package cluster

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// faultRounds is how many faults TestFaultsKeepWhatWasCommitted makes
// (go test ./cluster -run Faults -args -faults=500 for a soak).
var faultRounds = flag.Int("faults", 12, "faults made by TestFaultsKeepWhatWasCommitted")

// faultSeed repeats the faults of a run that failed (the seed it logged;
// the machine's timing still varies, so a failure may take several runs).
var faultSeed = flag.Uint64("fault-seed", 0, "seed of TestFaultsKeepWhatWasCommitted's faults (0: from the clock)")

// faultKinds narrows the faults made to some kinds, to chase one failure.
var faultKinds = flag.String("fault-kinds", "", "comma-separated faults TestFaultsKeepWhatWasCommitted chooses from (empty: all)")

// TestFaultsKeepWhatWasCommitted: three voters and a broker that is not
// one (a Raft learner); changes are appended through whichever node is
// the controller while, again and again, one node loses power (its
// metadata log and Raft state keep what they synced and a random part of
// the rest) and restarts, all four lose power at once, one node's disk
// fails a sync (losing what it did not make durable, while reads still
// see it) and its process is restarted, a node's disk is replaced
// (it restarts with nothing), a node is cut off from the others and
// rejoins, or the controller hands its role on. Every change
// answered as committed is on every node at the end, and the four
// metadata logs are identical: no fault, nor any sequence of them, loses
// an acknowledged change or lets the copies diverge. On the fast path and
// on the Raft fallback path.
func TestFaultsKeepWhatWasCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster through faults")
	}
	for _, fallback := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fallback"}[fallback], func(t *testing.T) {
			seed := *faultSeed
			if seed == 0 {
				seed = uint64(time.Now().UnixNano())
			}
			t.Logf("seed %d (the faults' order and timing; the machine's timing varies too)", seed)
			testFaults(t, fallback, seed)
		})
	}
}

// chaos is a cluster whose members can lose power: each has a file system
// of its own.
type chaos struct {
	t        *testing.T
	fallback bool
	dir      string

	// gossip: each member's gossip address, the same across restarts as
	// a node's --gossip-addr is (the others would refuse a node restarted
	// at another address while its last run is not yet declared dead).
	gossip [chaosNodes]string

	logs *tail // what the nodes logged, shown if the test fails

	mu  sync.Mutex
	fss [chaosNodes]*segmenttest.MemFS
	all []*member
}

// chaosNodes: nodes 1 to 3 are the voters, node 4 a learner.
const chaosNodes = 4

// ack is a change answered as committed: by which node, at what offset,
// when.
type ack struct {
	name    string
	node    int32 // the node that answered
	offset  int64 // -1: not known
	relayed bool  // answered by another node than the controller
	round   int32
	at      time.Time
}

// tail keeps the last bytes the nodes logged, and all of them in file.
type tail struct {
	mu   sync.Mutex
	buf  []byte
	file *os.File
}

const tailBytes = 256 << 10

func (l *tail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Write(p)
	l.buf = append(l.buf, p...)
	if len(l.buf) > 2*tailBytes {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-tailBytes:]...)
	}
	return len(p), nil
}

func (l *tail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf[max(0, len(l.buf)-tailBytes):])
}

func (l *tail) logger(id int) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id)
}

func (c *chaos) start(i int, join ...string) *member {
	// Snapshots and compactions as a long-running node takes them: a
	// restarted node replays from one, and one far behind gets one.
	o := memberOpts{fallback: c.fallback, fs: c.fss[i], gossipAddr: c.gossip[i], logger: c.logs.logger(i + 1),
		snapshotBytes: 1 << 20, compactEvery: 2000}
	return startMemberWith(c.t, o, int32(i+1), fmt.Sprintf("%s/%d", c.dir, i+1), join...)
}

// down stops member i, m.
func (c *chaos) down(i int, m *member) {
	c.mu.Lock()
	c.all[i] = nil
	c.mu.Unlock()
	m.stop()
}

// up starts member i again.
func (c *chaos) up(i int, join ...string) {
	m := c.start(i, join...)
	c.mu.Lock()
	c.all[i] = m
	c.mu.Unlock()
}

// newChaosFS is a member's file system: a failed sync loses what it did
// not make durable while reads still see it, as after a failed writeback
// on Linux, so a process restarted after a disk error reads bytes that a
// later power loss takes.
func newChaosFS() *segmenttest.MemFS {
	fs := segmenttest.NewMemFS()
	fs.FailedSyncsLoseWrites()
	return fs
}

// members returns the members as they are now (nil while one restarts).
func (c *chaos) members() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*member(nil), c.all...)
}

// running returns the members that run now.
func (c *chaos) running() []*member {
	var out []*member
	for _, m := range c.members() {
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

func testFaults(t *testing.T, fallback bool, seed uint64) {
	// The faults and their victims come from a source of their own, so a
	// seed repeats them whatever the crashes drew from the other.
	rng, pick := rand.New(rand.NewPCG(seed, 6)), rand.New(rand.NewPCG(seed, 7))
	// Every line goes to a file kept if the test fails: what led to a
	// failure is often long before it.
	f, err := os.CreateTemp("", "chronik-faults-*.log")
	if err != nil {
		t.Fatal(err)
	}
	c := &chaos{t: t, fallback: fallback, dir: t.TempDir(), logs: &tail{file: f}}
	defer func() {
		f.Close()
		if t.Failed() {
			t.Logf("the nodes' last log lines:\n%s\n(all of them: %s)", c.logs, f.Name())
		} else {
			os.Remove(f.Name())
		}
	}()
	for i := range c.fss {
		c.fss[i] = newChaosFS()
		c.gossip[i] = freeGossipAddr(t)
	}
	c.all = []*member{c.start(0)}
	for i := 1; i < chaosNodes; i++ {
		c.all = append(c.all, c.start(i, c.gossip[0]))
	}
	defer func() { stopAll(c.members()) }()
	settled(t, c.all)

	// The writers: four at once, each a change at a time through the
	// controller, as clients retrying NOT_CONTROLLER would. Two of them
	// are changes relayed through another node, as a Kafka request sent to
	// it is: the controller answers once its own copy is durable, and the
	// other node once it sees the change committed (WaitCommit).
	var (
		ackedMu sync.Mutex
		acked   []ack
		round   atomic.Int32 // the fault being made (or the one before)
	)
	stopWriters := streamChanges(4, func(w, i int) {
		running := c.running()
		ctrl := controllerOf(running)
		if ctrl == nil {
			time.Sleep(5 * time.Millisecond)
			return
		}
		name := fmt.Sprintf("w%d-%05d", w, i)
		events := topicEvents(name, ctrl.id)
		others := without(running, ctrl)
		a := ack{name: name, node: ctrl.id, offset: -1, relayed: w%2 == 1 && len(others) > 0}
		if !a.relayed {
			var err error
			if a.offset, err = ctrl.node.Append(time.Second, events...); err != nil {
				return
			}
		} else {
			answerer := others[i%len(others)]
			end, epoch, err := ctrl.node.AppendDurable(time.Second, events...)
			if err != nil || (end > 0 && !answerer.node.WaitCommit(end, epoch, time.Second)) {
				return
			}
			a.node = answerer.id
			if end > 0 { // 0 on the fallback path, which answers on commit
				a.offset = end - int64(len(events))
			}
		}
		a.round, a.at = round.Load(), time.Now()
		ackedMu.Lock()
		acked = append(acked, a)
		ackedMu.Unlock()
	})

	faults := map[string]int{}
	kinds := []string{"power loss", "cut off", "transfer", "blackout", "disk error", "new disk"}
	if *faultKinds != "" {
		kinds = strings.Split(*faultKinds, ",")
	}
	for r := range *faultRounds {
		time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
		round.Store(int32(r))
		victim := pick.IntN(chaosNodes)
		all := c.members()
		v := all[victim]
		fault := kinds[pick.IntN(len(kinds))]
		faults[fault]++
		t.Logf("round %d: %s of node %d", r, fault, v.id)
		switch fault {
		case "power loss": // then a restart
			c.mu.Lock()
			c.fss[victim] = c.fss[victim].Crash(rng)
			c.mu.Unlock()
			c.down(victim, v)
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			c.up(victim, c.gossip[(victim+1)%chaosNodes])
		case "blackout": // every node loses power at once, then all restart
			c.mu.Lock()
			for i := range c.fss {
				c.fss[i] = c.fss[i].Crash(rng)
			}
			c.mu.Unlock()
			for i, m := range all {
				c.down(i, m)
			}
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			c.up(0)
			for i := 1; i < chaosNodes; i++ {
				c.up(i, c.gossip[0])
			}
		case "disk error": // a sync fails: the node stops taking changes and its process exits; restarted
			c.fss[victim].FailSyncs(1)
			time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
			c.fss[victim].FailSyncs(0)
			c.down(victim, v)
			c.up(victim, c.gossip[(victim+1)%chaosNodes])
		case "new disk": // the node's disk is replaced: it starts again with nothing, and catches up before it votes
			c.down(victim, v)
			c.mu.Lock()
			c.fss[victim] = newChaosFS()
			c.mu.Unlock()
			c.up(victim, c.gossip[(victim+1)%chaosNodes])
			// As an operator replaces one disk at a time: while this node
			// holds back its vote, another voter losing its disk leaves
			// no majority that may elect a controller (by design: they
			// could elect one that lacks what this node had acknowledged).
			c.votesAgain(victim)
		case "cut off": // from the others, then healed
			for _, m := range all {
				if m == v {
					m.node.SetCut(func(id int32) bool { return id != v.id })
				} else {
					m.node.SetCut(func(id int32) bool { return id == v.id })
				}
			}
			time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
			for _, m := range all {
				m.node.SetCut(nil)
			}
		case "transfer": // the controller hands its role to the victim
			if ctrl := controllerOf(all); ctrl != nil && ctrl != v {
				ctrl.node.TransferController(t.Context(), v.id)
			}
		default:
			t.Fatalf("no fault %q (-fault-kinds)", fault)
		}
		c.caughtUp(r)
	}
	time.Sleep(300 * time.Millisecond)
	stopWriters()
	if len(acked) < 20 {
		t.Fatalf("only %d changes were committed through the faults", len(acked))
	}
	relayed := 0
	for _, a := range acked {
		if a.relayed {
			relayed++
		}
	}
	t.Logf("%d changes committed (%d relayed) through %v", len(acked), relayed, faults)

	all := c.members()
	missing := func(m *member) (n int, first ack) {
		m.meta.View(func(s *eventlog.State) {
			for _, a := range acked {
				if s.Topics[a.name] == nil {
					if n++; n == 1 {
						first = a
					}
				}
			}
		})
		return n, first
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lacking := 0
		for _, m := range all {
			n, _ := missing(m)
			lacking += n
		}
		if lacking == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, m := range all {
				n, first := missing(m)
				t.Logf("node %d lacks %d committed changes (first %q: offset %d, acknowledged by node %d at %s in round %d); its log there: %s",
					m.id, n, first.name, first.offset, first.node, first.at.Format("15:04:05.000"), first.round,
					records(m.meta, first.offset-4, first.offset+6))
			}
			c.report(all)
			t.Fatal("timed out waiting for every committed change on every node")
		}
	}
	// A last change commits on every node: their logs then end together.
	appendAsClient(t, all, topicEvents("last", 1), func(s *eventlog.State) bool { return s.Topics["last"] != nil })
	waitFor(t, "the last change on every node", all, func(s *eventlog.State) bool { return s.Topics["last"] != nil })
	sameMetadata(t, all)
	sameBytes(t, all)
}

// votesAgain waits until member i, whose disk was replaced, has caught up
// and votes again: one that never does is stuck.
func (c *chaos) votesAgain(i int) {
	start := time.Now()
	for c.members()[i].node.catchingUp.Load() {
		if time.Since(start) > 20*time.Second {
			c.report(c.members())
			c.t.Fatalf("node %d, its disk replaced, did not catch up in 20 s", i+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d > time.Second {
		c.t.Logf("node %d caught up after %v", i+1, d.Round(time.Millisecond))
	}
}

// caughtUp waits until every node has applied what any of them had when
// the round's fault was over: one that stays behind is stuck.
func (c *chaos) caughtUp(round int) {
	all := c.members()
	var target int64
	for _, m := range all {
		target = max(target, m.meta.Committed())
	}
	start := time.Now()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var behind *member
		for _, m := range all {
			if m.meta.Committed() < target {
				behind = m
			}
		}
		if behind == nil {
			if took := time.Since(start); took > time.Second {
				c.t.Logf("round %d: every node applied up to %d after %v", round, target, took.Round(time.Millisecond))
			}
			return
		}
		if time.Now().After(deadline) {
			c.report(all)
			c.t.Fatalf("after round %d node %d has not applied up to %d, where another node was", round, behind.id, target)
		}
	}
}

// report logs each node's metadata log, Raft and gossip state.
func (c *chaos) report(all []*member) {
	for _, m := range all {
		end, epoch := m.meta.End()
		leader, self := m.node.Controller()
		c.t.Logf("node %d: log end %d (epoch %d), committed %d, controller %d (itself: %v); raft %+v; gossip %+v (at %s); last records %s",
			m.id, end, epoch, m.meta.Committed(), leader, self, m.node.driver().Status(), m.node.gsp.Members(), m.node.gsp, lastRecords(m.meta, 6))
	}
}

// lastRecords names the keys of a log's last records, at most n.
func lastRecords(l *eventlog.Log, n int) string {
	end := l.Segment().HighWatermark()
	return records(l, end-int64(n), end)
}

// records names the keys of a log's records from about from to to (whole
// batches), with their offsets.
func records(l *eventlog.Log, from, to int64) string {
	seg := l.Segment()
	var keys []string
	if from < seg.StartOffset() {
		keys = append(keys, fmt.Sprintf("(the log starts at %d)", seg.StartOffset()))
	}
	for off := max(seg.StartOffset(), from); off < min(to, seg.HighWatermark()); {
		b, err := seg.Read(off, 1<<20, nil)
		if err != nil || len(b) == 0 {
			break
		}
		h, batch, err := segment.NextBatch(b)
		if err != nil {
			break
		}
		recs, err := segment.DecodeRecords(batch, 1<<20)
		if err != nil {
			break
		}
		for _, r := range recs {
			keys = append(keys, fmt.Sprintf("%d:%s", r.Offset, r.Key))
		}
		off = h.LastOffset() + 1
	}
	return fmt.Sprint(keys)
}

// sameBytes checks that the metadata logs hold the same batches, byte for
// byte, from the latest of their starts, and that in each the epochs
// never go down (a batch of an older epoch after a newer one was written
// by a deposed controller).
func sameBytes(t *testing.T, all []*member) {
	t.Helper()
	var from int64
	for _, m := range all {
		seg := m.meta.Segment()
		from = max(from, seg.StartOffset())
		for deadline := time.Now().Add(10 * time.Second); seg.HighWatermark() != seg.EndOffset(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d's metadata log is not durable to its end", m.id)
			}
		}
	}
	var first [][]byte
	for i, m := range all {
		b := batchesOf(t, m, from)
		if i == 0 {
			first = b
			continue
		}
		for j := range max(len(first), len(b)) {
			if j < len(first) && j < len(b) && bytes.Equal(first[j], b[j]) {
				continue
			}
			describe := func(bs [][]byte) string {
				if j >= len(bs) {
					return "nothing"
				}
				h, _ := segment.ParseHeader(bs[j])
				return fmt.Sprintf("offsets %d-%d of epoch %d, %d bytes", h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch, len(bs[j]))
			}
			t.Fatalf("the metadata logs of nodes %d and %d differ from offset %d on: batch %d is %s on node %d and %s on node %d",
				all[0].id, m.id, from, j, describe(first), all[0].id, describe(b), m.id)
		}
	}
}

// batchesOf returns a member's metadata batches from offset from on,
// checking that their epochs never go down.
func batchesOf(t *testing.T, m *member, from int64) [][]byte {
	t.Helper()
	seg := m.meta.Segment()
	var out [][]byte
	epoch := int32(-1)
	for off := from; off < seg.HighWatermark(); {
		b, err := seg.Read(off, 1<<20, nil)
		if err != nil {
			t.Fatalf("node %d: read at %d: %v", m.id, off, err)
		}
		for len(b) > 0 {
			h, batch, err := segment.NextBatch(b)
			if err != nil {
				t.Fatalf("node %d: batch at %d: %v", m.id, off, err)
			}
			if h.PartitionLeaderEpoch < epoch {
				t.Fatalf("node %d: the batch at %d is of epoch %d, after one of epoch %d", m.id, h.BaseOffset, h.PartitionLeaderEpoch, epoch)
			}
			epoch = h.PartitionLeaderEpoch
			out = append(out, batch)
			off, b = h.LastOffset()+1, b[len(batch):]
		}
	}
	return out
}
