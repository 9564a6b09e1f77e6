package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment"
)

// TestNodesTakeTheClusterID: three nodes, each with a cluster id of its
// own, all take the one the first controller recorded and gossip it; a
// restarted node knows it during its start; a node whose metadata is
// another cluster's cannot join.
func TestNodesTakeTheClusterID(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) { testNodesTakeTheClusterID(t, fallback) })
	}
}

func testNodesTakeTheClusterID(t *testing.T, fallback bool) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	o := memberOpts{fallback: fallback, clusterID: func(id int32) string { return fmt.Sprintf("own-%d", id) }}
	dir := t.TempDir()
	all := startThreeWith(t, o, dir)
	defer func() { stopAll(all) }()
	ctrl := settled(t, all)
	want := ""
	for _, m := range all {
		select {
		case id := <-m.learned:
			if want == "" {
				want = id
			}
			if id != want || m.node.ClusterID() != want {
				t.Fatalf("node %d takes cluster id %q (ClusterID %q), another %q", m.id, id, m.node.ClusterID(), want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("node %d was never told its cluster's id", m.id)
		}
	}
	if !strings.HasPrefix(want, "own-") {
		t.Fatalf("the cluster's id is %q, no node's own", want)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		gossiped := true
		for _, m := range all {
			for _, g := range m.node.gsp.Members() {
				gossiped = gossiped && g.ClusterID == want
			}
		}
		if gossiped {
			break
		}
		if time.Now().After(deadline) {
			for _, m := range all {
				t.Logf("node %d sees %+v", m.id, m.node.gsp.Members())
			}
			t.Fatal("the nodes do not gossip the cluster's id")
		}
	}

	// A follower restarted: its metadata says which cluster it is of.
	i := 0
	for all[i] == ctrl {
		i++
	}
	f := all[i]
	again := o
	again.gossipAddr = f.node.GossipAddr() // the same member to the others
	f.stop()
	all[i] = nil
	back := startMemberWith(t, again, f.id, f.dir, ctrl.node.GossipAddr())
	all[i] = back
	select {
	case id := <-back.learned:
		if id != want {
			t.Fatalf("restarted, node %d takes %q, not %q", back.id, id, want)
		}
	default:
		t.Fatalf("node %d did not know its cluster's id when its start returned", back.id)
	}

	// A node whose metadata is another cluster's does not start (node 2
	// of that cluster: the refusal is for the cluster, not the id). On the
	// fallback path its Raft log, which does not account for that
	// metadata, refuses it first.
	other := t.TempDir()
	seedMetadata(t, other, fallback, &eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: clusterIDConfig, Value: "cluster-b"})
	m, err := startMemberErr(t, o, 2, other, ctrl.node.GossipAddr())
	switch {
	case err == nil:
		m.stop()
		t.Fatal("a node of cluster-b joined the cluster")
	case fallback && !strings.Contains(err.Error(), "its Raft log none"):
		t.Fatalf("the refusal says %q", err)
	case !fallback && (!strings.Contains(err.Error(), "belong to cluster "+want) || !strings.Contains(err.Error(), "cluster-b")):
		t.Fatalf("the refusal says %q", err)
	}
}

// openMetadata opens the metadata log in dir as a member of the given
// path does; done closes it and its store.
func openMetadata(t *testing.T, dir string, fallback bool) (l *eventlog.Log, done func()) {
	t.Helper()
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err = eventlog.Open(st, eventlog.Options{Replicated: !fallback, KeepSegments: fallback})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return l, func() { l.Close(); st.Close() }
}

// seedMetadata writes events to the metadata log in dir, a batch each, as
// a member of the given path opens it.
func seedMetadata(t *testing.T, dir string, fallback bool, events ...eventlog.Event) {
	t.Helper()
	l, done := openMetadata(t, dir, fallback)
	defer done()
	l.Lead(1)                  // a replicated log appends as the controller only
	for _, e := range events { // a batch each
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFollowerRefusesAnotherClustersController: a follower whose metadata
// is one cluster's refuses a controller of another, even where its epoch
// and the offsets would fit, and one of no cluster yet (elected by nodes
// with empty logs, it would cut this node's log).
func TestFollowerRefusesAnotherClustersController(t *testing.T) {
	n2 := startNode(t, 2, t.TempDir())
	n2.log.Lead(1)
	if _, err := n2.log.Append(&eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: clusterIDConfig, Value: "cluster-a"}); err != nil {
		t.Fatal(err)
	}
	n2.log.Follow()
	for _, tc := range []struct {
		cluster string
		want    byte
	}{{"cluster-b", kindError}, {"cluster-a", kindState}, {"", kindError}} {
		conn, err := net.Dial("tcp", n2.addr)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(conn)
		w.WriteByte(StreamMetadata)
		writeFrame(w, kindHello, int32(2), int32(1), tc.cluster)
		fr, err := readFrame(bufio.NewReader(conn))
		conn.Close()
		if err != nil || fr.kind != tc.want {
			t.Fatalf("a controller of %q: %v %v", tc.cluster, fr, err)
		}
		if msg := string(fr.rest()); tc.want == kindError && !strings.Contains(msg, "and this node's metadata is cluster cluster-a's") {
			t.Fatalf("the refusal says %q", msg)
		}
	}
}

// TestDataOfAnotherClusterIsNeverCut: node 1 holds the metadata of a
// cluster of its own (a single node's, say) and starts with two nodes of
// none. On the fast path, whoever wins the first election, node 1's
// metadata stays whole: either it leads and the others take its cluster,
// or the two with empty logs form a cluster of their own, which node 1
// neither joins nor takes anything from; started first, node 1 always
// leads (the empty nodes do not campaign while gossip shows a node whose
// log is a cluster's). On the fallback path, where the metadata log is
// written from Raft's log only, node 1 refuses to start with a metadata
// log its Raft log does not account for.
func TestDataOfAnotherClusterIsNeverCut(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			if testing.Short() {
				t.Skip("runs a cluster")
			}
			for round := range 4 {
				testDataOfAnotherCluster(t, fallback, false, round)
			}
			if !fallback {
				for round := range 4 {
					if got := testDataOfAnotherCluster(t, fallback, true, round); got != "solo" {
						t.Fatalf("round %d with node 1 started first: the cluster is %s", round, got)
					}
				}
			}
		})
	}
}

// testDataOfAnotherCluster runs one start of node 1 (with metadata of
// cluster "solo") and two empty nodes, node 1 first or all at once, and
// returns the cluster nodes 2 and 3 form.
func testDataOfAnotherCluster(t *testing.T, fallback, firstAlone bool, round int) string {
	dir := t.TempDir()
	seedMetadata(t, dir+"/1", fallback,
		&eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: clusterIDConfig, Value: "solo"},
		&eventlog.BrokerRegistered{BrokerID: 1, Incarnation: eventlog.NewUUID(), Endpoints: []eventlog.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9091}}},
		&eventlog.TopicCreated{Name: "precious", TopicID: eventlog.NewUUID(), PartitionCount: 1, ReplicationFactor: 1})
	o := memberOpts{fallback: fallback, clusterID: func(id int32) string { return fmt.Sprintf("own-%d", id) }}
	var gossip [3]string
	for i := range gossip {
		gossip[i] = freeGossipAddr(t)
	}
	all := make([]*member, 3)
	var wg sync.WaitGroup
	for i := range all {
		if firstAlone && i == 1 {
			wg.Wait() // node 1 runs
		}
		wg.Go(func() {
			oi := o
			oi.gossipAddr = gossip[i]
			var seeds []string
			for j, g := range gossip {
				if j != i {
					seeds = append(seeds, g)
				}
			}
			m, err := startMemberErr(t, oi, int32(i+1), fmt.Sprintf("%s/%d", dir, i+1), seeds...)
			switch {
			case i == 0 && fallback:
				if err == nil || !strings.Contains(err.Error(), "its Raft log none") {
					t.Errorf("node 1 with metadata and no Raft log on the fallback path: %v", err)
				}
			case err != nil:
				t.Error(err)
			}
			all[i] = m
		})
	}
	wg.Wait()
	running := slices.DeleteFunc(slices.Clone(all), func(m *member) bool { return m == nil })
	defer func() { stopAll(running) }()
	if t.Failed() {
		t.FailNow()
	}
	// A cluster forms, of all three or of the two with empty logs.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ids := map[string]bool{}
		for _, m := range all[1:] {
			ids[m.node.ClusterID()] = true
		}
		if len(ids) == 1 && !ids[""] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("round %d: nodes 2 and 3 hold cluster ids %v", round, ids)
		}
	}
	time.Sleep(300 * time.Millisecond) // let shipping and Raft try what they would
	cluster := all[1].node.ClusterID()
	stopAll(running)
	running = nil
	// Node 1's metadata, read from its files.
	l, done := openMetadata(t, dir+"/1", fallback)
	defer done()
	var precious bool
	var id string
	l.ViewAll(func(s *eventlog.State) {
		precious, id = s.Topics["precious"] != nil, s.BrokerConfigs[""][clusterIDConfig]
	})
	if !precious || id != "solo" {
		t.Fatalf("round %d: node 1's metadata lost its topic (%v) or its cluster (%q)", round, precious, id)
	}
	t.Logf("round %d (node 1 first: %v): the cluster is %s", round, firstAlone, cluster)
	return cluster
}

// TestControllerWarnsOfARefusingFollower: a follower that keeps refusing
// the metadata log (here it holds another cluster's) is a warning on the
// controller's side too, once a minute, not once a retry.
func TestControllerWarnsOfARefusingFollower(t *testing.T) {
	n1, n2 := startNode(t, 1, t.TempDir()), startNode(t, 2, t.TempDir())
	for n, cluster := range map[*node]string{n1: "cluster-b", n2: "cluster-a"} {
		n.log.Lead(1)
		if _, err := n.log.Append(&eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: clusterIDConfig, Value: cluster}); err != nil {
			t.Fatal(err)
		}
	}
	n2.log.Follow()
	var out bytes.Buffer
	c := NewController(n1.log, 1, 1, []int32{1, 2}, peersOf(n1, n2), slog.New(slog.NewTextHandler(&out, nil)))
	time.Sleep(1500 * time.Millisecond) // refused at 0, 0.2, 0.6 and 1.4 s
	c.Stop()                            // and its goroutines write no more
	if n := strings.Count(out.String(), "the follower refuses the metadata log"); n != 1 || !strings.Contains(out.String(), "level=WARN") || !strings.Contains(out.String(), "cluster-a") {
		t.Fatalf("%d warnings of a refusing follower in 1.5 s, want 1:\n%s", n, out.String())
	}
}
