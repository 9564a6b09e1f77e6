package raft

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/latency"
)

// TestMain lets the test binary run as one Raft node process (for the
// SIGKILL tests): RAFT_NODE=id, RAFT_PEERS=id=addr,..., RAFT_DIR=dir, the
// listener as file descriptor 3. It prints "role ROLE term T leader L" on
// every change and runs until killed.
func TestMain(m *testing.M) {
	if id := os.Getenv("RAFT_NODE"); id != "" {
		os.Exit(runNodeProcess(id))
	}
	os.Exit(m.Run())
}

func parsePeers(s string) (map[int32]string, []int32) {
	peers := map[int32]string{}
	var ids []int32
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(k)
		peers[int32(n)] = v
		ids = append(ids, int32(n))
	}
	slices.Sort(ids)
	return peers, ids
}

func runNodeProcess(idStr string) int {
	id, _ := strconv.Atoi(idStr)
	peers, ids := parsePeers(os.Getenv("RAFT_PEERS"))
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, restored, err := OpenStorage(nil, os.Getenv("RAFT_DIR"), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var d *Driver
	var mu sync.Mutex
	tr := NewTCPTransport(int32(id), ln, peers, func(m Message) {
		mu.Lock()
		dd := d
		mu.Unlock()
		if dd != nil {
			dd.Step(m)
		}
	}, nil)
	out := bufio.NewWriter(os.Stdout)
	dd, err := NewDriver(DriverConfig{
		Node:    Config{ID: int32(id), Voters: ids, Seed: uint64(time.Now().UnixNano())},
		Storage: st, Restored: restored, Transport: tr,
		OnRole: func(role Role, term uint64, leader int32) {
			fmt.Fprintf(out, "role %s term %d leader %d\n", role, term, leader)
			out.Flush()
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mu.Lock()
	d = dd
	mu.Unlock()
	select {}
}

// procCluster runs three node processes.
type procCluster struct {
	t      testing.TB
	dir    string
	lns    map[int32]*os.File
	peers  string
	cmds   map[int32]*exec.Cmd
	events chan roleEvent
	seen   []roleEvent
}

type roleEvent struct {
	node   int32
	role   string
	term   uint64
	leader int32
	at     time.Time
}

func newProcCluster(t testing.TB) *procCluster {
	c := &procCluster{t: t, dir: t.TempDir(), lns: map[int32]*os.File{}, cmds: map[int32]*exec.Cmd{}, events: make(chan roleEvent, 1024)}
	var parts []string
	for id := int32(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		c.lns[id] = f
		parts = append(parts, fmt.Sprintf("%d=%s", id, ln.Addr()))
	}
	c.peers = strings.Join(parts, ",")
	for id := int32(1); id <= 3; id++ {
		c.start(id)
	}
	t.Cleanup(func() {
		for _, cmd := range c.cmds {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

func (c *procCluster) start(id int32) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("RAFT_NODE=%d", id), "RAFT_PEERS="+c.peers, "RAFT_DIR="+fmt.Sprintf("%s/n%d", c.dir, id))
	cmd.ExtraFiles = []*os.File{c.lns[id]}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmds[id] = cmd
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e roleEvent
			if _, err := fmt.Sscanf(sc.Text(), "role %s term %d leader %d", &e.role, &e.term, &e.leader); err == nil {
				e.node, e.at = id, time.Now()
				c.events <- e
			}
		}
	}()
}

func (c *procCluster) kill(id int32) {
	c.cmds[id].Process.Signal(syscall.SIGKILL)
	c.cmds[id].Wait()
	delete(c.cmds, id)
}

// waitLeader returns the first leader reported, other than not, in a term
// above minTerm.
func (c *procCluster) waitLeader(not int32, minTerm uint64, timeout time.Duration) roleEvent {
	deadline := time.After(timeout)
	for {
		select {
		case e := <-c.events:
			c.seen = append(c.seen, e)
			if e.role == "leader" && e.node != not && e.term > minTerm {
				return e
			}
		case <-deadline:
			c.t.Fatalf("no leader within %v", timeout)
		}
	}
}

// TestProcessesElectAfterSIGKILL: three node processes elect a leader;
// SIGKILL it; the other two elect a new one; the old one restarts and
// follows.
func TestProcessesElectAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := newProcCluster(t)
	first := c.waitLeader(None, 0, 10*time.Second)
	killed := time.Now()
	c.kill(first.node)
	second := c.waitLeader(first.node, first.term, 10*time.Second)
	t.Logf("leader %d (term %d) killed; %d elected in term %d after %v", first.node, first.term, second.node, second.term, second.at.Sub(killed))
	c.start(first.node)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-c.events:
			if e.node == first.node && e.role == "follower" && e.leader == second.node {
				return
			}
		case <-deadline:
			t.Fatalf("the restarted node %d did not follow %d", first.node, second.node)
		}
	}
}

// BenchmarkFailoverLoopback: three processes on loopback with the default
// timeouts; SIGKILL the leader, time until another reports itself leader,
// restart the killed one; b.N times. Reports p50/p99/max in ms.
func BenchmarkFailoverLoopback(b *testing.B) {
	c := newProcCluster(b)
	leader := c.waitLeader(None, 0, 10*time.Second)
	var ms []float64
	for range b.N {
		time.Sleep(300 * time.Millisecond) // let the cluster settle
		killed := time.Now()
		c.kill(leader.node)
		c.seen = nil
		next := c.waitLeader(leader.node, leader.term, 20*time.Second)
		ms = append(ms, float64(next.at.Sub(killed).Microseconds())/1000)
		if ms[len(ms)-1] > 700 {
			for _, e := range c.seen {
				b.Logf("+%v node %d %s term %d leader %d", e.at.Sub(killed).Round(time.Millisecond), e.node, e.role, e.term, e.leader)
			}
		}
		c.start(leader.node)
		leader = next
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], "p50-ms")
	b.ReportMetric(ms[min(len(ms)-1, len(ms)*99/100)], "p99-ms")
	b.ReportMetric(ms[len(ms)-1], "max-ms")
	b.ReportMetric(0, "ns/op")
}

// inProcCluster runs three drivers with TCP transports in this process.
type inProcCluster struct {
	drivers map[int32]*Driver
	trs     map[int32]*TCPTransport
	mu      sync.Mutex
	waiters map[string]chan struct{}
	applied map[int32]int
	watches map[int32]*appendWatch
}

// appendWatch is a node's transport that notes, on the driver's goroutine,
// the appends the node sends before its own copy of their entries is
// durable, and whether it already counted that copy towards a commit.
type appendWatch struct {
	Transport
	mu      sync.Mutex
	d       *Driver // set once started
	early   int     // appends sent before the sender's copy was durable
	counted int     // of those, appends whose entries counted as the sender's (must be none)
}

func (w *appendWatch) Send(m Message) {
	w.mu.Lock()
	if d := w.d; d != nil && m.Type == MsgApp && len(m.Entries) > 0 {
		n, last := d.node, m.Entries[len(m.Entries)-1].Index
		st := d.cfg.Storage
		if last >= st.firstIndex()+uint64(len(st.state.Entries)) { // not saved yet
			w.early++
			if n.prs[n.id].match >= last {
				w.counted++
			}
		}
	}
	w.mu.Unlock()
	w.Transport.Send(m)
}

func newInProcCluster(t testing.TB) *inProcCluster {
	c := &inProcCluster{drivers: map[int32]*Driver{}, trs: map[int32]*TCPTransport{}, waiters: map[string]chan struct{}{}, applied: map[int32]int{},
		watches: map[int32]*appendWatch{}}
	lns := map[int32]net.Listener{}
	peers := map[int32]string{}
	for id := int32(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], peers[id] = ln, ln.Addr().String()
	}
	dir := t.TempDir()
	for id := int32(1); id <= 3; id++ {
		st, restored, err := OpenStorage(nil, fmt.Sprintf("%s/n%d", dir, id), nil)
		if err != nil {
			t.Fatal(err)
		}
		var d *Driver
		var dmu sync.Mutex
		tr := NewTCPTransport(id, lns[id], peers, func(m Message) {
			dmu.Lock()
			dd := d
			dmu.Unlock()
			if dd != nil {
				dd.Step(m)
			}
		}, nil)
		w := &appendWatch{Transport: tr}
		dd, err := NewDriver(DriverConfig{Node: Config{ID: id, Voters: []int32{1, 2, 3}, Seed: uint64(id)}, Storage: st, Restored: restored, Transport: w,
			Apply: func(es []Entry) {
				c.mu.Lock()
				for _, e := range es {
					c.applied[id]++
					if w := c.waiters[string(e.Data)]; w != nil && id == c.leaderLocked() {
						close(w)
						delete(c.waiters, string(e.Data))
					}
				}
				c.mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		dmu.Lock()
		d = dd
		dmu.Unlock()
		w.mu.Lock()
		w.d = dd
		w.mu.Unlock()
		c.drivers[id], c.trs[id], c.watches[id] = dd, tr, w
		t.Cleanup(func() {
			dd.Stop()
			tr.Close()
			st.Close()
		})
	}
	return c
}

func (c *inProcCluster) leaderLocked() int32 {
	for id, d := range c.drivers {
		if d.Status().Role == Leader {
			return id
		}
	}
	return None
}

func (c *inProcCluster) waitLeader(t testing.TB) *Driver {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, d := range c.drivers {
			if d.Status().Role == Leader {
				return d
			}
		}
	}
	t.Fatal("no leader")
	return nil
}

// commit proposes data at the leader and waits until the leader applied it.
func (c *inProcCluster) commit(ctx context.Context, leader *Driver, data string) error {
	w := make(chan struct{})
	c.mu.Lock()
	c.waiters[data] = w
	c.mu.Unlock()
	if err := leader.Propose(ctx, []byte(data)); err != nil {
		return err
	}
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestDriversReplicateOverTCP: three drivers commit entries over TCP; the
// leader sends its appends before its own copy is durable (the Raft
// thesis, 10.2.1) but does not count that copy towards a commit until it
// is; leadership is handed over.
func TestDriversReplicateOverTCP(t *testing.T) {
	c := newInProcCluster(t)
	leader := c.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 50 {
		if err := c.commit(ctx, leader, fmt.Sprint("e", i)); err != nil {
			t.Fatal(err)
		}
	}
	early, counted := 0, 0
	for _, w := range c.watches {
		w.mu.Lock()
		early, counted = early+w.early, counted+w.counted
		w.mu.Unlock()
	}
	if early < 50 {
		t.Fatalf("%d of 50 proposals were sent before the leader's copy was durable", early)
	}
	if counted > 0 {
		t.Fatalf("the leader counted its own undurable copy towards a commit %d times", counted)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		done := c.applied[1] >= 50 && c.applied[2] >= 50 && c.applied[3] >= 50
		c.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied: %v", c.applied)
		}
	}
	// The leader knows what each follower holds, and when it answered;
	// a follower knows no progress.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		prs, last, err := leader.Progress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := len(prs) == 2
		for id, pr := range prs {
			done = done && id != leader.Status().ID && pr.Match == last && !pr.AnsweredAt.IsZero()
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's progress: %v, last %d", prs, last)
		}
	}
	for id, d := range c.drivers {
		if d != leader {
			if prs, _, err := d.Progress(ctx); err != nil || prs != nil {
				t.Fatalf("follower %d's progress: %v %v", id, prs, err)
			}
		}
	}
	// A graceful handover.
	var to int32 = 1
	if leader.Status().ID == 1 {
		to = 2
	}
	if err := leader.TransferLeadership(ctx, to); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); c.drivers[to].Status().Role != Leader; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("leadership did not move to %d", to)
		}
	}
}

// BenchmarkCommitLoopback: the fallback path's cost, three drivers over
// TCP on loopback, each persisting with fdatasync: one proposal at a time
// (latency) and 64 concurrent proposers (throughput).
func BenchmarkCommitLoopback(b *testing.B) {
	for _, proposers := range []int{1, 64} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			c := newInProcCluster(b)
			leader := c.waitLeader(b)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			lat := latency.New(b.N)
			var wg sync.WaitGroup
			per := max(b.N/proposers, 1)
			start := time.Now()
			for p := range proposers {
				wg.Go(func() {
					for i := range per {
						t0 := time.Now()
						if err := c.commit(ctx, leader, fmt.Sprintf("p%d-%d", p, i)); err != nil {
							b.Error(err)
							return
						}
						lat.Add(time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			latency.Report(b, "entries", int64(lat.Len()), elapsed, lat)
		})
	}
}

// TestMayCampaign: a voter whose MayCampaign says no lets its election
// timeouts pass without campaigning; once it says yes, it campaigns.
func TestMayCampaign(t *testing.T) {
	may := false
	n, err := New(Config{ID: 1, Voters: []int32{1, 2, 3}, MayCampaign: func() bool { return may }, Seed: 1}, Restored{})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		n.Tick()
	}
	if st := n.Status(); st.Role != Follower || st.Term != 0 || len(n.Ready().Messages) != 0 {
		t.Fatalf("after 100 ticks without leave to campaign: %+v", st)
	}
	may = true
	for range 30 {
		n.Tick()
	}
	if st := n.Status(); st.Role != PreCandidate {
		t.Fatalf("with leave to campaign: %+v", st)
	}
}
