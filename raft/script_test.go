package raft

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scenario scripts in testdata/")

// TestScenarios runs the scripts in testdata/: each is a series of
//
//	command args
//	----
//	expected output
//
// blocks separated by a blank line. The output is the message trace: every
// message delivered or dropped, role changes, and what status/log print.
// go test ./raft -run TestScenarios -rewrite regenerates it.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenario scripts in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	w := &world{t: t, nodes: map[int32]*simNode{}, cut: map[int32]bool{}}
	blocks := strings.Split(strings.TrimRight(string(data), "\n")+"\n", "\n\n")
	for _, block := range blocks {
		lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
		var cmds []string
		i := 0
		for ; i < len(lines) && lines[i] != "----"; i++ {
			cmds = append(cmds, lines[i])
		}
		want := ""
		if i < len(lines) {
			want = strings.Join(lines[i+1:], "\n")
		}
		w.out.Reset()
		for _, c := range cmds {
			if !strings.HasPrefix(c, "#") && strings.TrimSpace(c) != "" {
				w.run(c)
			}
		}
		got := strings.TrimRight(w.out.String(), "\n")
		if !*rewrite && got != want {
			t.Errorf("%s: after\n%s\ngot:\n%s\nwant:\n%s", file, strings.Join(cmds, "\n"), got, want)
		}
		out.WriteString(strings.Join(cmds, "\n") + "\n----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		out.WriteString("\n")
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// world is a scripted cluster: messages wait in a queue until delivered;
// nodes cut off from the others lose what they send and would receive.
type world struct {
	t        *testing.T
	ids      []int32
	learners []int32
	nodes    map[int32]*simNode
	queue    []Message
	cut      map[int32]bool
	cfg      Config
	out      strings.Builder
}

func (w *world) printf(format string, args ...any) { fmt.Fprintf(&w.out, format+"\n", args...) }

func (w *world) run(line string) {
	f := strings.Fields(line)
	arg := func(i int) int32 {
		if i >= len(f) {
			w.t.Fatalf("%q: missing argument %d", line, i)
		}
		v, err := strconv.Atoi(f[i])
		if err != nil {
			w.t.Fatalf("%q: %v", line, err)
		}
		return int32(v)
	}
	switch f[0] {
	case "nodes": // nodes N [maxentries=M]
		n := int(arg(1))
		w.ids = nil
		for i := range n {
			w.ids = append(w.ids, int32(i+1))
		}
		w.cfg = Config{Voters: w.ids, ElectionTicks: 10, HeartbeatTicks: 1, MaxInflight: 8, MaxEntriesPerMsg: 8, Seed: 1}
		if len(f) > 2 && strings.HasPrefix(f[2], "maxentries=") {
			v, _ := strconv.Atoi(strings.TrimPrefix(f[2], "maxentries="))
			w.cfg.MaxEntriesPerMsg = v
		}
		for _, id := range w.ids {
			w.nodes[id] = &simNode{id: id}
			w.start(id)
		}
	case "learner": // learner ID: a node that is not a voter, known to every node as a learner
		id := arg(1)
		w.ids = append(slices.Clip(w.ids), id)
		w.learners = append(w.learners, id)
		w.nodes[id] = &simNode{id: id}
		w.start(id)
		for _, sn := range w.nodes {
			if sn.n != nil {
				sn.n.AddLearner(id)
				w.process(sn.id)
			}
		}
	case "campaign": // campaign ID: the election timeout fires now
		n := w.node(arg(1))
		n.electionElapsed = n.randomizedElection - 1
		n.Tick()
		w.process(arg(1))
	case "tick": // tick ID|all [count]
		count := 1
		if len(f) > 2 {
			count = int(arg(2))
		}
		for range count {
			for _, id := range w.targets(f[1]) {
				if w.nodes[id].n != nil {
					w.nodes[id].n.Tick()
					w.process(id)
				}
			}
		}
	case "deliver": // deliver [types=T,...] [from=ID] [to=ID] [count=N]: deliver queued messages and those they cause (only those, at most N)
		var types []string
		var from, to int32
		count := 1 << 30
		for _, opt := range f[1:] {
			switch k, v, _ := strings.Cut(opt, "="); k {
			case "types":
				types = strings.Split(v, ",")
			case "count":
				count, _ = strconv.Atoi(v)
			case "from":
				n, _ := strconv.Atoi(v)
				from = int32(n)
			case "to":
				n, _ := strconv.Atoi(v)
				to = int32(n)
			default:
				w.t.Fatalf("%q: unknown option %s", line, opt)
			}
		}
		var held []Message
		for ; len(w.queue) > 0 && count > 0; count-- {
			m := w.queue[0]
			w.queue = w.queue[1:]
			if types != nil && !slices.Contains(types, m.Type.String()) || from != None && m.From != from || to != None && m.To != to {
				held = append(held, m)
				count++
				continue
			}
			to := w.nodes[m.To]
			if w.cut[m.From] || w.cut[m.To] || to.n == nil {
				w.printf("drop %s", m)
				continue
			}
			w.printf("%s", m)
			to.n.Step(m)
			w.process(m.To)
		}
		w.queue = append(held, w.queue...)
	case "expire": // expire ID...: the nodes' leader lease runs out (without a campaign)
		for _, id := range w.targets(strings.Join(f[1:], ",")) {
			n := w.node(id)
			n.electionElapsed = max(n.electionElapsed, n.cfg.ElectionTicks)
		}
	case "run": // run N: N rounds of a tick on every node, then delivering everything
		for range int(arg(1)) {
			w.run("tick all")
			w.run("deliver")
		}
	case "drop": // drop: lose every queued message
		for _, m := range w.queue {
			w.printf("drop %s", m)
		}
		w.queue = nil
	case "cut": // cut ID...: isolate nodes
		for _, id := range f[1:] {
			v, _ := strconv.Atoi(id)
			w.cut[int32(v)] = true
		}
	case "heal":
		clear(w.cut)
	case "propose": // propose ID data
		if err := w.node(arg(1)).Propose([]byte(f[2])); err != nil {
			w.printf("propose at %d: %v", arg(1), err)
		}
		w.process(arg(1))
	case "transfer": // transfer FROM TO
		if err := w.node(arg(1)).TransferLeadership(arg(2)); err != nil {
			w.printf("transfer: %v", err)
		}
		w.process(arg(1))
	case "compact": // compact ID: at its applied index
		sn := w.nodes[arg(1)]
		if err := sn.n.Compact(sn.applied, []byte("state")); err != nil {
			w.printf("compact: %v", err)
		}
		snap := sn.n.log.snap
		sn.snap = &snap
		sn.ents = slices.DeleteFunc(sn.ents, func(e Entry) bool { return e.Index <= snap.Index })
	case "crash":
		w.nodes[arg(1)].n = nil
		w.printf("crash %d", arg(1))
	case "restart":
		w.start(arg(1))
	case "wipe": // wipe ID: a crashed node's disk is replaced (it holds nothing)
		sn := w.nodes[arg(1)]
		sn.hs, sn.snap, sn.ents = HardState{}, nil, nil
		w.printf("wipe %d", arg(1))
	case "status": // status [ID...]
		for _, id := range w.targets(strings.Join(f[1:], ",")) {
			if sn := w.nodes[id]; sn.n == nil {
				w.printf("%d: down", id)
			} else {
				st := sn.n.Status()
				w.printf("%d: %s term=%d lead=%d commit=%d applied=%d last=%d/%d snapshot=%d", id, st.Role, st.Term, st.Lead, st.Commit, sn.applied, st.LastTerm, st.Last, st.SnapshotIndex)
			}
		}
	case "log": // log ID
		sn := w.nodes[arg(1)]
		var parts []string
		for _, e := range sn.n.log.entries {
			parts = append(parts, fmt.Sprintf("%d/%d:%s", e.Term, e.Index, e.Data))
		}
		w.printf("%d: snapshot=%d/%d %s", arg(1), sn.n.log.snap.Term, sn.n.log.snap.Index, strings.Join(parts, " "))
	default:
		w.t.Fatalf("unknown command %q", line)
	}
}

func (w *world) node(id int32) *Node {
	sn := w.nodes[id]
	if sn == nil || sn.n == nil {
		w.t.Fatalf("node %d is not running", id)
	}
	return sn.n
}

func (w *world) targets(s string) []int32 {
	if s == "" || s == "all" {
		return w.ids
	}
	var out []int32
	for _, x := range strings.Split(s, ",") {
		v, err := strconv.Atoi(x)
		if err != nil {
			w.t.Fatalf("bad node list %q", s)
		}
		out = append(out, int32(v))
	}
	return out
}

func (w *world) start(id int32) {
	sn := w.nodes[id]
	cfg := w.cfg
	cfg.ID = id
	n, err := New(cfg, Restored{HardState: sn.hs, Snapshot: sn.snap, Entries: sn.ents})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, l := range w.learners {
		n.AddLearner(l)
	}
	sn.n = n
	sn.applied = 0
	if sn.snap != nil {
		sn.applied = sn.snap.Index
	}
}

// process persists, queues the messages, applies and advances, as a driver.
func (w *world) process(id int32) {
	sn := w.nodes[id]
	for {
		rd := sn.n.Ready()
		if rd.Empty() {
			return
		}
		if rd.Snapshot != nil {
			w.printf("%d installs snapshot %d/%d", id, rd.Snapshot.Term, rd.Snapshot.Index)
		}
		sn.persist(rd)
		w.queue = append(w.queue, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			sn.applied = e.Index
			if len(e.Data) > 0 {
				w.printf("%d applies %d/%d:%s", id, e.Term, e.Index, e.Data)
			}
		}
		if rd.RoleChanged {
			if rd.Role == Follower && rd.Leader != None {
				w.printf("%d follows %d in term %d", id, rd.Leader, sn.n.term)
			} else {
				w.printf("%d becomes %s in term %d", id, rd.Role, sn.n.term)
			}
		}
		sn.n.Advance(rd)
	}
}
