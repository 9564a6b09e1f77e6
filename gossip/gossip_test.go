package gossip

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func start(t *testing.T, id int32, join ...string) *Gossip {
	t.Helper()
	return startIn(t, "", id, join...)
}

// startIn starts node id of cluster (empty: of none yet).
func startIn(t *testing.T, cluster string, id int32, join ...string) *Gossip {
	t.Helper()
	g, err := Start(testConfig(cluster, id, join...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown() })
	return g
}

func testConfig(cluster string, id int32, join ...string) Config {
	return Config{Meta: Meta{NodeID: id, KafkaAddr: "127.0.0.1:909" + string('0'+rune(id)), ReplicationAddr: "127.0.0.1:929" + string('0'+rune(id)), ClusterID: cluster},
		BindAddr: "127.0.0.1:0", Join: join, Local: true}
}

func ids(ms []Meta) []int32 {
	var out []int32
	for _, m := range ms {
		out = append(out, m.NodeID)
	}
	return out
}

func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func waitEvent(t *testing.T, g *Gossip, kind EventKind, id int32, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-g.Events():
			if e.Kind == kind && e.Member.NodeID == id {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event for node %d within %v", kind, id, d)
		}
	}
}

// TestMembership: joining through one seed finds every node with its
// addresses; a second node with a taken id is refused; a node that stops
// answering is reported failed, and joined again when it comes back.
func TestMembership(t *testing.T) {
	g1 := start(t, 1)
	g2 := start(t, 2, g1.Addr())
	g3 := start(t, 3, g2.Addr()) // knows only 2
	for _, g := range []*Gossip{g1, g2, g3} {
		eventually(t, "every node to see the two others", 10*time.Second, func() bool { return len(g.Members()) == 2 })
	}
	if got := ids(g1.Members()); !reflect.DeepEqual(got, []int32{2, 3}) {
		t.Fatalf("node 1 sees %v", got)
	}
	if m := g1.Members()[1]; m.KafkaAddr != "127.0.0.1:9093" || m.ReplicationAddr != "127.0.0.1:9293" {
		t.Fatalf("node 3's meta as node 1 sees it: %+v", m)
	}

	_, err := Start(Config{Meta: Meta{NodeID: 2, KafkaAddr: "x:1", ReplicationAddr: "x:2"}, BindAddr: "127.0.0.1:0", Join: []string{g1.Addr()}, Local: true})
	if err == nil || !strings.Contains(err.Error(), "node id 2 is already used") {
		t.Fatalf("a second node 2: %v", err)
	}
	if got := ids(g1.Members()); !reflect.DeepEqual(got, []int32{2, 3}) {
		t.Fatalf("after the refused duplicate, node 1 sees %v", got)
	}

	// A node restarted at once, at the same address, before the others
	// noticed it was gone: it is not refused as a duplicate of itself, and
	// nobody hears of a failure. The restarted node is the same member
	// (its name is its id): over longer than the others take to declare a
	// silent member dead, no failure of node 3 may be reported.
	addr := g3.Addr()
	g3.Shutdown()
	g3, err = Start(Config{Meta: Meta{NodeID: 3, KafkaAddr: "127.0.0.1:9093", ReplicationAddr: "127.0.0.1:9293"}, BindAddr: addr, Join: []string{g1.Addr()}, Local: true})
	if err != nil {
		t.Fatalf("restart at the same address: %v", err)
	}
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); {
		select {
		case e := <-g1.Events():
			if e.Kind == Failed && e.Member.NodeID == 3 {
				t.Fatalf("node 3 reported failed although it restarted")
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if got := ids(g1.Members()); !reflect.DeepEqual(got, []int32{2, 3}) {
		t.Fatalf("after the restart node 1 sees %v", got)
	}

	// Stopped without a goodbye, it is reported failed; started again at
	// another address, it joins again.
	g3.Shutdown()
	waitEvent(t, g1, Failed, 3, 20*time.Second)
	g3 = start(t, 3, g1.Addr())
	waitEvent(t, g1, Joined, 3, 10*time.Second)
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(Meta{NodeID: 1, KafkaAddr: "127.0.0.1:9092", ReplicationAddr: "127.0.0.1:9291"}.Encode())
	f.Add(Meta{NodeID: 1, KafkaAddr: "127.0.0.1:9092", ReplicationAddr: "127.0.0.1:9291", ClusterID: "c1"}.Encode())
	f.Add(Meta{NodeID: 2, KafkaAddr: "a:1", ReplicationAddr: "b:2", ClusterID: "c1", Voters: []int32{1, 2, 3}, Formed: true}.Encode())
	f.Add([]byte{1, 0, 0, 0, 1, 3, 'a', ':', '1', 3, 'b', ':', '2'})         // version 1: no cluster id
	f.Add([]byte{2, 0, 0, 0, 1, 3, 'a', ':', '1', 3, 'b', ':', '2', 1, 'c'}) // version 2: no voters
	f.Add([]byte{3, 0, 0, 0, 1, 0, 0, 0, 200, 0, 0, 0, 1})                   // more voters than bytes
	f.Add([]byte{1, 0, 0, 0, 1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		if again, err := DecodeMeta(m.Encode()); err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("%+v re-encoded: %+v %v", m, again, err)
		}
	})
}

// TestJoinBeforeTheSeedIsUp: a node whose seed is not running yet starts
// anyway and joins once the seed is up.
func TestJoinBeforeTheSeedIsUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := ln.Addr().String()
	ln.Close()
	g2 := start(t, 2, seedAddr) // nobody there yet
	g1, err := Start(Config{Meta: Meta{NodeID: 1, KafkaAddr: "127.0.0.1:9091", ReplicationAddr: "127.0.0.1:9291"}, BindAddr: seedAddr, Local: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g1.Shutdown()
	eventually(t, "the early node to find the seed", 10*time.Second, func() bool { return len(g2.Members()) == 1 && len(g1.Members()) == 1 })
}

// TestAddressesTooLongToGossip: addresses beyond what memberlist's node
// metadata holds are an error at start (memberlist itself would panic),
// saying which flags to shorten; the longest that fit start.
func TestAddressesTooLongToGossip(t *testing.T) {
	host := func(n int) string { return strings.Repeat("h", n-5) + ":9092" }
	for _, tc := range []struct {
		kafka, repl int
		ok          bool
	}{
		{200, 172, true}, // with room for the longest cluster id and the most voters
		{200, 173, false},
		{400, 300, false},
	} {
		g, err := Start(Config{Meta: Meta{NodeID: 1, KafkaAddr: host(tc.kafka), ReplicationAddr: host(tc.repl)}, BindAddr: "127.0.0.1:0", Local: true})
		if g != nil {
			g.Shutdown()
		}
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "use shorter host names") {
			t.Errorf("addresses of %d and %d bytes: %v", tc.kafka, tc.repl, err)
		}
	}
}

// TestRestartAtTheSameAddress: a node restarted at its gossip address
// with new metadata (a replication port of its new run), at once or
// after a pause, stopped cleanly or killed, is seen by the others with
// its new metadata, again and again.
func TestRestartAtTheSameAddress(t *testing.T) {
	g1 := start(t, 1)
	g2 := start(t, 2, g1.Addr())
	addr := ""
	var g3 *Gossip
	for run := range 20 {
		meta := Meta{NodeID: 3, KafkaAddr: "127.0.0.1:9093", ReplicationAddr: "127.0.0.1:" + string(rune('0'+run/10)) + string(rune('0'+run%10))}
		bind := addr
		if bind == "" {
			bind = "127.0.0.1:0"
		}
		var err error
		g3, err = Start(Config{Meta: meta, BindAddr: bind, Join: []string{g1.Addr()}, Local: true})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		addr = g3.Addr()
		for _, g := range []*Gossip{g1, g2} {
			seen := func() bool {
				for _, m := range g.Members() {
					if m.NodeID == 3 && m.ReplicationAddr == meta.ReplicationAddr {
						return true
					}
				}
				return false
			}
			for deadline := time.Now().Add(10 * time.Second); !seen(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					g.mu.Lock()
					members := fmt.Sprint(g.members)
					g.mu.Unlock()
					var nodes []string
					for _, n := range g.ml.Members() {
						nodes = append(nodes, fmt.Sprintf("%s@%s:%d/%v", n.Name, n.Addr, n.Port, n.State))
					}
					t.Fatalf("run %d: %s does not see the new run's metadata; it holds %s; memberlist: %v", run, g.name, members, nodes)
				}
			}
		}
		if run%2 == 0 {
			g3.Leave(time.Second)
		} else {
			g3.Shutdown()
		}
		time.Sleep(time.Duration(run%4) * 100 * time.Millisecond)
	}
	g3.Shutdown()
}

// TestJoinIsAnnouncedToEveryMember: a node that joins through one seed is
// known at once to every member the seed knows, not only to those that
// memberlist's gossip happens to reach (here it reaches none: gossip and
// probes are off, as when every message about the node is missed).
func TestJoinIsAnnouncedToEveryMember(t *testing.T) {
	tuneMemberlist = func(c *memberlist.Config) {
		c.GossipInterval, c.ProbeInterval = time.Hour, time.Hour
	}
	defer func() { tuneMemberlist = nil }()
	g1 := start(t, 1)
	g2 := start(t, 2, g1.Addr())
	g3 := start(t, 3, g1.Addr())
	for _, g := range []*Gossip{g1, g2, g3} {
		eventually(t, fmt.Sprintf("node %d to see the others", g.self.NodeID), 2*time.Second, func() bool { return len(g.Members()) == 2 })
	}
}

// TestNodesOfAnotherClusterAreRefused: a node whose metadata is another
// cluster's does not start when its seeds are all of that other cluster;
// a node of no cluster yet joins any, and once it takes a cluster's id
// the others see it; nodes of two clusters do not see each other.
func TestNodesOfAnotherClusterAreRefused(t *testing.T) {
	a1 := startIn(t, "cluster-a", 1)
	g, err := Start(testConfig("cluster-b", 2, a1.Addr()))
	if err == nil {
		g.Shutdown()
		t.Fatal("a node of cluster-b started with a seed of cluster-a")
	}
	if msg := err.Error(); !strings.Contains(msg, "belong to cluster cluster-a, and this node's metadata to cluster cluster-b") || !strings.Contains(msg, "empty data directory") {
		t.Fatalf("the refusal says %q", msg)
	}

	fresh := startIn(t, "", 3, a1.Addr())
	eventually(t, "the fresh node to join", 10*time.Second, func() bool { return len(a1.Members()) == 1 && len(fresh.Members()) == 1 })
	if err := fresh.SetClusterID("cluster-a", time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fresh node's cluster id to reach node 1", 10*time.Second, func() bool {
		m := a1.Members()
		return len(m) == 1 && m[0].ClusterID == "cluster-a"
	})
	a2 := startIn(t, "cluster-a", 4, fresh.Addr())
	eventually(t, "node 4 to find both", 10*time.Second, func() bool { return len(a2.Members()) == 2 && len(a1.Members()) == 2 })

	// Two clusters, one seed of each: each side sees only its own.
	b1 := startIn(t, "cluster-b", 5)
	b2 := startIn(t, "cluster-b", 6, b1.Addr(), a1.Addr())
	eventually(t, "node 6 to find node 5", 10*time.Second, func() bool { return len(b2.Members()) == 1 })
	time.Sleep(time.Second) // gossip rounds
	if got := ids(b2.Members()); !reflect.DeepEqual(got, []int32{5}) {
		t.Fatalf("node 6 of cluster-b sees %v", got)
	}
	if got := ids(a1.Members()); !reflect.DeepEqual(got, []int32{3, 4}) {
		t.Fatalf("node 1 of cluster-a sees %v", got)
	}
}

// TestDecodeMetaOfEarlierVersions: metadata of nodes from before cluster
// ids reads as of no cluster yet, and from before voters as of no voters
// known.
func TestDecodeMetaOfEarlierVersions(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want Meta
	}{
		{[]byte{1, 0, 0, 0, 1, 3, 'a', ':', '1', 3, 'b', ':', '2'}, Meta{NodeID: 1, KafkaAddr: "a:1", ReplicationAddr: "b:2"}},
		{[]byte{2, 0, 0, 0, 1, 3, 'a', ':', '1', 3, 'b', ':', '2', 1, 'c'}, Meta{NodeID: 1, KafkaAddr: "a:1", ReplicationAddr: "b:2", ClusterID: "c"}},
	} {
		m, err := DecodeMeta(c.b)
		if err != nil || !reflect.DeepEqual(m, c.want) {
			t.Errorf("version %d: got %+v, %v; want %+v", c.b[0], m, err, c.want)
		}
	}
	for _, b := range [][]byte{
		{3, 0, 0, 0, 1, 0, 0, 0, 17},               // more voters than a node gossips
		{3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0}, // voter 0
		{3, 0, 0, 0, 1, 0, 0, 0, 0},                // no flags
		{3, 0, 0, 0, 1, 0, 0, 0, 0, 2},             // a flag to come
		{3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1},    // a voter short
		{4, 0, 0, 0, 1, 0, 0, 0, 0},                // a version to come
		{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0}, // version 2 with voters
	} {
		if m, err := DecodeMeta(b); !errors.Is(err, ErrBadMeta) {
			t.Errorf("DecodeMeta(%v) = %+v, %v; want ErrBadMeta", b, m, err)
		}
	}
}
