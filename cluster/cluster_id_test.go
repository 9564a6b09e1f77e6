package cluster

import (
	"bufio"
	"fmt"
	"net"
	"strings"
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
	// of that cluster: the refusal is for the cluster, not the id).
	other := t.TempDir()
	seedMetadata(t, other, fallback, &eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: clusterIDConfig, Value: "cluster-b"})
	if m, err := startMemberErr(t, o, 2, other, ctrl.node.GossipAddr()); err == nil {
		m.stop()
		t.Fatal("a node of cluster-b joined the cluster")
	} else if !strings.Contains(err.Error(), "belong to cluster "+want) || !strings.Contains(err.Error(), "cluster-b") {
		t.Fatalf("the refusal says %q", err)
	}
}

// seedMetadata writes events to the metadata log in dir, as a member of
// the given path opens it.
func seedMetadata(t *testing.T, dir string, fallback bool, events ...eventlog.Event) {
	t.Helper()
	st, err := segment.OpenStore(dir, segment.StoreOptions{RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := eventlog.Open(st, eventlog.Options{Replicated: !fallback, KeepSegments: fallback})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Lead(1) // a replicated log appends as the controller only
	if _, err := l.Append(events...); err != nil {
		t.Fatal(err)
	}
}

// TestFollowerRefusesAnotherClustersController: a follower whose metadata
// is one cluster's refuses a controller of another, even where its epoch
// and the offsets would fit.
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
	}{{"cluster-b", kindError}, {"cluster-a", kindState}, {"", kindState}} {
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
		if msg := string(fr.rest()); tc.want == kindError && !strings.Contains(msg, "controller 1 runs cluster cluster-b, and this node's metadata is cluster cluster-a's") {
			t.Fatalf("the refusal says %q", msg)
		}
	}
}
