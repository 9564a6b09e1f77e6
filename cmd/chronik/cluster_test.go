package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/bench"
	"github.com/chronik-stream/chronik/internal/latency"
	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// onBothPaths runs test on the fast path and on the Raft fallback path
// (extra: the flags of the path).
func onBothPaths(t *testing.T, test func(t *testing.T, extra ...string)) {
	t.Run("fast path", func(t *testing.T) { test(t) })
	t.Run("raft fallback", func(t *testing.T) { test(t, "--disable-metadata-wal") })
}

// testCluster is three chronik processes on loopback, the voters, and
// possibly a fourth that is not one (addBroker).
type testCluster struct {
	extra             []string              // more flags for every node
	perNode           func(id int) []string // and for one (nil: none)
	t                 testing.TB
	dirs, kafka, repl [5]string // by node id
	gossip            [5]string
	cmds              [5]*exec.Cmd
}

func startCluster(t testing.TB, extra ...string) *testCluster {
	return startClusterWith(t, nil, extra...)
}

// startClusterWith is startCluster with perNode's flags for each node.
func startClusterWith(t testing.TB, perNode func(id int) []string, extra ...string) *testCluster {
	return startClusterIn(t, t.TempDir, perNode, extra...)
}

// startClusterIn is startClusterWith with each node's data directory made
// by dir (segmenttest.TmpfsDir for one in memory, say).
func startClusterIn(t testing.TB, dir func() string, perNode func(id int) []string, extra ...string) *testCluster {
	tc := &testCluster{t: t, extra: extra, perNode: perNode}
	for id := 1; id <= 3; id++ {
		tc.dirs[id], tc.kafka[id], tc.repl[id], tc.gossip[id] = dir(), freeAddr(t), freeAddr(t), freeAddr(t)
	}
	for id := 1; id <= 3; id++ {
		tc.start(id)
	}
	return tc
}

// addBroker starts node 4, a broker that is not a voter.
func (tc *testCluster) addBroker() {
	tc.dirs[4], tc.kafka[4], tc.repl[4], tc.gossip[4] = tc.t.TempDir(), freeAddr(tc.t), freeAddr(tc.t), freeAddr(tc.t)
	tc.start(4)
}

// start runs node id; it joins the others' gossip, except the first node
// at the first start, which has nobody to join.
func (tc *testCluster) start(id int) {
	args := []string{"--node-id", fmt.Sprint(id), "--voters", "1,2,3", "--replication-addr", tc.repl[id],
		"--gossip-addr", tc.gossip[id], "--fence-after", "2s"}
	args = append(args, tc.extra...)
	if tc.perNode != nil {
		args = append(args, tc.perNode(id)...)
	}
	var seeds []string
	for other := 1; other <= 4; other++ {
		if other != id && tc.cmds[other] != nil && tc.cmds[other].ProcessState == nil {
			seeds = append(seeds, tc.gossip[other])
		}
	}
	if len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	tc.cmds[id] = startNode(tc.t, tc.dirs[id], tc.kafka[id], args...)
}

// client talks to one node only.
func (tc *testCluster) client(id int) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(tc.kafka[id]))
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(cl.Close)
	return cl
}

// metadata asks node id, and only it, for the cluster's metadata.
func (tc *testCluster) metadata(ctx context.Context, cl *kgo.Client, id int) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	resp, err := cl.Request(ctx, req) // learns the broker ids
	if err != nil {
		return nil, err
	}
	r, err := cl.Broker(id).Request(ctx, req)
	if err != nil {
		return resp.(*kmsg.MetadataResponse), nil
	}
	return r.(*kmsg.MetadataResponse), nil
}

// controller waits until node 1 names a controller and knows all three
// brokers, and returns the controller's id.
func (tc *testCluster) controller(ctx context.Context, cl *kgo.Client) int {
	tc.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if md, err := tc.metadata(ctx, cl, 1); err == nil && md.ControllerID > 0 && len(md.Brokers) == 3 {
			return int(md.ControllerID)
		}
		if time.Now().After(deadline) {
			tc.t.Fatal("no controller with three brokers")
		}
	}
}

func topicSet(md *kmsg.MetadataResponse) map[string]bool {
	out := map[string]bool{}
	for _, t := range md.Topics {
		if t.Topic != nil && t.ErrorCode == 0 {
			out[*t.Topic] = true
		}
	}
	return out
}

// createThrough sends CreateTopics to node id itself (it forwards to the
// controller when it is not it).
func createThrough(ctx context.Context, cl *kgo.Client, id int, name string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, 1, 1
	req.Topics = append(req.Topics, t)
	r, err := cl.Broker(id).Request(ctx, req)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
}

// dump prints node id's metadata log before offset end.
func (tc *testCluster) dump(id int, end int64) string {
	out, err := exec.Command(binary, "log", "dump", "--to", fmt.Sprint(end-1), tc.dirs[id]+"/__chronik_metadata-0").CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		for i, l := range lines {
			if strings.Contains(l, "damage") {
				lines = lines[max(0, i-3):min(len(lines), i+3)]
				break
			}
		}
		tc.t.Fatalf("dump of node %d: %v\n%s", id, err, strings.Join(lines, "\n"))
	}
	return string(out)
}

// TestClusterOfThreeProcesses: 1,000 topics created through randomly chosen
// nodes are on every node and the metadata logs are identical; the
// controller is SIGKILLed in the middle of the creates: another takes
// over, every create answered with success is on every live node, and the
// old controller comes back and converges.
func TestClusterOfThreeProcesses(t *testing.T) {
	onBothPaths(t, testClusterOfThree)
}

func testClusterOfThree(t *testing.T, extra ...string) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	tc := startCluster(t, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients := [4]*kgo.Client{nil, tc.client(1), tc.client(2), tc.client(3)}
	controller := tc.controller(ctx, clients[1])
	// Each client knows every broker (a node may register itself in its
	// own view after node 1 has).
	for id, cl := range clients[1:] {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest())
			if err == nil && len(r.(*kmsg.MetadataResponse).Brokers) == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client of node %d: the brokers are not all known: %v", id+1, err)
			}
		}
	}
	// Every node reports the cluster's id, the first controller's, and
	// keeps it in its data directory.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ids := map[string]bool{}
		for id := 1; id <= 3; id++ {
			if md, err := tc.metadata(ctx, clients[id], id); err == nil && md.ClusterID != nil {
				ids[*md.ClusterID] = true
			}
			if b, err := os.ReadFile(filepath.Join(tc.dirs[id], "cluster-id")); err == nil {
				ids[strings.TrimSpace(string(b))] = true
			}
		}
		if len(ids) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes report or keep different cluster ids: %v", ids)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	created := map[string]bool{}
	killed := 0
	for i := range 1000 {
		if i == 500 {
			tc.cmds[controller].Process.Signal(syscall.SIGKILL)
			tc.cmds[controller].Wait()
			killed = controller
		}
		id := 1 + rng.IntN(3)
		if id == killed {
			id = 1 + (id % 3)
		}
		name := fmt.Sprintf("topic-%04d", i)
		if err := createThrough(ctx, clients[id], id, name); err == nil {
			created[name] = true
		} else if !kerr.IsRetriable(err) && !strings.Contains(err.Error(), "connection") {
			t.Fatalf("create %s through node %d: %v", name, id, err)
		}
	}
	if len(created) < 900 {
		t.Fatalf("only %d of 1,000 creates succeeded", len(created))
	}
	live := []int{}
	for id := 1; id <= 3; id++ {
		if id != killed {
			live = append(live, id)
		}
	}
	for _, id := range live {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			md, err := tc.metadata(ctx, clients[id], id)
			missing := 0
			if err == nil {
				have := topicSet(md)
				for name := range created {
					if !have[name] {
						missing++
					}
				}
			}
			if err == nil && missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lacks %d acknowledged topics (%v)", id, missing, err)
			}
		}
	}

	// Gossip reported the killed node failed: after --fence-after it is
	// fenced, and Metadata lists two brokers.
	brokers := func(id int) int {
		md, err := tc.metadata(ctx, clients[id], id)
		if err != nil {
			return -1
		}
		return len(md.Brokers)
	}
	for deadline := time.Now().Add(20 * time.Second); brokers(live[0]) != 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the killed broker was not fenced: node %d lists %d brokers", live[0], brokers(live[0]))
		}
	}

	// The old controller comes back and catches up, unfenced; stopped
	// cleanly, the three metadata logs are identical.
	tc.start(killed)
	for deadline := time.Now().Add(20 * time.Second); brokers(live[0]) != 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the returning broker was not unfenced")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		md, err := tc.metadata(ctx, clients[killed], killed)
		if err == nil && len(topicSet(md)) >= len(created) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node did not catch up (%v)", err)
		}
	}
	// Every node's metadata log ends at the same offset (the last commit
	// reached everyone), then they stop.
	metaEnd := func(id int) int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "__chronik_metadata"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := clients[id].Broker(id).Request(ctx, req)
		if err != nil {
			return -1
		}
		return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset
	}
	clients[killed] = tc.client(killed)
	clients[killed].Request(ctx, kmsg.NewPtrMetadataRequest())

	// ElectLeaders sent to every node (those not the controller forward
	// it): each partition is led by its one replica again, the returned
	// node's too, so none needs an election.
	var some string
	for name := range created {
		some = max(some, name)
	}
	for _, id := range []int{1, 2, 3} {
		req := kmsg.NewPtrElectLeadersRequest()
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic = some
		rt.Partitions = []int32{0}
		req.Topics = append(req.Topics, rt)
		r, err := clients[id].Broker(id).Request(ctx, req)
		if err != nil {
			t.Fatalf("ElectLeaders through node %d: %v", id, err)
		}
		if rp := r.(*kmsg.ElectLeadersResponse).Topics[0].Partitions[0]; rp.ErrorCode != kerr.ElectionNotNeeded.Code {
			t.Errorf("ElectLeaders through node %d: error %d, want ELECTION_NOT_NEEDED", id, rp.ErrorCode)
		}
	}
	checkLeaderHints(ctx, t, tc, clients, some)
	var agreed int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		e1, e2, e3 := metaEnd(1), metaEnd(2), metaEnd(3)
		if e1 > 0 && e1 == e2 && e2 == e3 {
			agreed = e1
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metadata logs end at %d, %d and %d", e1, e2, e3)
		}
	}
	for id := 1; id <= 3; id++ {
		tc.cmds[id].Process.Signal(syscall.SIGTERM)
		tc.cmds[id].Wait()
	}
	// Compared up to the end they agreed on: the controller may append
	// (a fencing, when the others stop first) that no one else gets.
	a, b, c := tc.dump(1, agreed), tc.dump(2, agreed), tc.dump(3, agreed)
	if a != b || b != c {
		t.Fatalf("the metadata logs differ: %d, %d and %d bytes of dump", len(a), len(b), len(c))
	}
	if !strings.Contains(a, "TopicCreated") {
		t.Fatal("the dump shows no topics")
	}
}

// checkLeaderHints sends a produce and a fetch of partition 0 of topic, by
// its id, to a node that does not lead it: each is answered
// NOT_LEADER_OR_FOLLOWER with the leader's id, epoch and endpoint
// (KIP-951), which clients follow without asking for metadata.
func checkLeaderHints(ctx context.Context, t *testing.T, tc *testCluster, clients [4]*kgo.Client, topic string) {
	t.Helper()
	md, err := tc.metadata(ctx, clients[1], 1)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(md.Topics, func(mt kmsg.MetadataResponseTopic) bool { return mt.Topic != nil && *mt.Topic == topic })
	if i < 0 || len(md.Topics[i].Partitions) != 1 || md.Topics[i].Partitions[0].Leader <= 0 {
		t.Fatalf("metadata of %s: %+v", topic, md.Topics)
	}
	id, p := md.Topics[i].TopicID, md.Topics[i].Partitions[0]
	other := 1 + int(p.Leader)%3
	port := func(brokers []int32, hosts []string, ports []int32) {
		t.Helper()
		for i, b := range brokers {
			if b == p.Leader && net.JoinHostPort(hosts[i], fmt.Sprint(ports[i])) == tc.kafka[p.Leader] {
				return
			}
		}
		t.Fatalf("the leader %d's endpoint %s is not among %v %v %v", p.Leader, tc.kafka[p.Leader], brokers, hosts, ports)
	}
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 5000
	produce.Topics = []kmsg.ProduceRequestTopic{{TopicID: id, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: segmenttest.Values(1, "v")}}}}
	r, err := clients[other].Broker(other).Request(ctx, produce)
	if err != nil {
		t.Fatal(err)
	}
	pr := r.(*kmsg.ProduceResponse)
	if rp := pr.Topics[0].Partitions[0]; rp.ErrorCode != kerr.NotLeaderForPartition.Code || rp.CurrentLeader.LeaderID != p.Leader || rp.CurrentLeader.LeaderEpoch != p.LeaderEpoch {
		t.Fatalf("a produce to node %d, not the leader %d (epoch %d): %+v", other, p.Leader, p.LeaderEpoch, rp)
	}
	var ids, ports []int32
	var hosts []string
	for _, b := range pr.Brokers {
		ids, hosts, ports = append(ids, b.NodeID), append(hosts, b.Host), append(ports, b.Port)
	}
	port(ids, hosts, ports)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes = 1 << 20
	fetch.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{{PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	if r, err = clients[other].Broker(other).Request(ctx, fetch); err != nil {
		t.Fatal(err)
	}
	fr := r.(*kmsg.FetchResponse)
	if rp := fr.Topics[0].Partitions[0]; rp.ErrorCode != kerr.NotLeaderForPartition.Code || rp.CurrentLeader.LeaderID != p.Leader || rp.CurrentLeader.LeaderEpoch != p.LeaderEpoch {
		t.Fatalf("a fetch from node %d, not the leader %d (epoch %d): %+v", other, p.Leader, p.LeaderEpoch, rp)
	}
	ids, hosts, ports = nil, nil, nil
	for _, b := range fr.Brokers {
		ids, hosts, ports = append(ids, b.NodeID), append(hosts, b.Host), append(ports, b.Port)
	}
	port(ids, hosts, ports)
}

// BenchmarkClusterFailover: three processes; SIGKILL the controller and
// time until a topic creation through a surviving node succeeds (a new
// controller committed it); restart the killed node; b.N times, on the
// fast path and on the Raft fallback. Reports p50/p99/max in ms.
func BenchmarkClusterFailover(b *testing.B) {
	for _, mode := range []struct {
		name  string
		extra []string
	}{{"fast", nil}, {"raft-fallback", []string{"--disable-metadata-wal"}}} {
		b.Run("path="+mode.name, func(b *testing.B) {
			tc := startCluster(b, mode.extra...)
			defer func() {
				for _, cmd := range tc.cmds[1:] {
					if cmd != nil && cmd.ProcessState == nil {
						cmd.Process.Kill()
						cmd.Wait()
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// controller waits until the three nodes agree on a controller
			// (the metadata names it once its term's first batch commits).
			controller := func() int {
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					agreed := 0
					for id := 1; id <= 3; id++ {
						cl, err := kgo.NewClient(kgo.SeedBrokers(tc.kafka[id]))
						if err != nil {
							break
						}
						md, err := tc.metadata(ctx, cl, id)
						cl.Close()
						if err != nil || md.ControllerID <= 0 || len(md.Brokers) != 3 || (agreed != 0 && int(md.ControllerID) != agreed) {
							agreed = -1
							break
						}
						agreed = int(md.ControllerID)
					}
					if agreed > 0 {
						return agreed
					}
				}
				b.Fatal("the nodes do not agree on a controller")
				return 0
			}
			var ms []float64
			for i := range b.N {
				time.Sleep(300 * time.Millisecond) // the cluster settles
				c := controller()
				tc.cmds[c].Process.Signal(syscall.SIGKILL)
				tc.cmds[c].Wait()
				killed := time.Now()
				via := 1 + c%3
				cl, err := kgo.NewClient(kgo.SeedBrokers(tc.kafka[via]))
				if err != nil {
					b.Fatal(err)
				}
				cl.Request(ctx, kmsg.NewPtrMetadataRequest())
				for {
					if err := createThrough(ctx, cl, via, fmt.Sprintf("failover-%d", i)); err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
						break
					}
					if time.Since(killed) > time.Minute {
						b.Fatal("no metadata write succeeded for a minute after the controller died")
					}
					time.Sleep(5 * time.Millisecond)
				}
				ms = append(ms, float64(time.Since(killed).Microseconds())/1000)
				cl.Close()
				tc.start(c)
			}
			sort.Float64s(ms)
			b.ReportMetric(ms[len(ms)/2], "p50-ms")
			b.ReportMetric(ms[min(len(ms)-1, len(ms)*99/100)], "p99-ms")
			b.ReportMetric(ms[len(ms)-1], "max-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkClusterCreateThrough: three processes; one topic created at a
// time with CreateTopics sent to the controller or to a follower (which
// forwards it), on the fast path with quorum and with leader acks and on
// the Raft fallback. Reports topics/s and latency. The baselines run
// first: one process, its own controller, on the same disk; and the disk
// syncing three files at once, a round at a time (what three nodes on one
// disk ask of it for each change; rounds/s). Last, fast-quorum-tmpfs: the
// same three nodes with their data in memory, the cluster without the
// disk (what hops between processes and CPU leave of the goal).
func BenchmarkClusterCreateThrough(b *testing.B) {
	b.Run("path=disk-3-files", func(b *testing.B) {
		r, err := bench.DiskWrite(b.TempDir(), b.N*512*3, 512, 3, true)
		if err != nil {
			b.Fatal(err)
		}
		latency.Report(b, "rounds", r.Ops, r.Elapsed, r.Samples())
	})
	b.Run("path=single-node", func(b *testing.B) {
		addr := freeAddr(b)
		startNode(b, b.TempDir(), addr)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		latency.Sequential(b, "topics", b.N, func(i int) error { return createThrough(ctx, cl, 1, fmt.Sprint("bench-", i)) })
	})
	for _, mode := range []struct {
		name   string
		extra  []string
		memory bool
	}{{"fast-quorum", nil, false}, {"fast-leader", []string{"--metadata-acks", "leader"}, false}, {"raft-fallback", []string{"--disable-metadata-wal"}, false}, {"fast-quorum-tmpfs", nil, true}} {
		for _, via := range []string{"controller", "follower"} {
			b.Run("path="+mode.name+"/via="+via, func(b *testing.B) {
				dir := b.TempDir
				if mode.memory {
					dir = func() string { return segmenttest.TmpfsDir(b) }
				}
				tc := startClusterIn(b, dir, nil, mode.extra...)
				defer func() {
					for _, cmd := range tc.cmds[1:4] {
						cmd.Process.Kill()
						cmd.Wait()
					}
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				cl := tc.client(1)
				controller := tc.controller(ctx, cl)
				target := controller
				if via == "follower" {
					target = 1 + controller%3
				}
				latency.Sequential(b, "topics", b.N, func(i int) error {
					return createThrough(ctx, cl, target, fmt.Sprint("bench-", i))
				})
			})
		}
	}
}

// BenchmarkClusterFirstMessage: three processes, fast path with quorum
// acks; a topic created through the controller, then one record produced
// to it as a client would: ask a random node who leads the partition and
// send it there, asking again 100 µs later while the node does not know
// the topic or its leader yet. Times create + first acknowledgement: how
// soon a change is served on every node.
func BenchmarkClusterFirstMessage(b *testing.B) {
	tc := startCluster(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := tc.client(1)
	controller := tc.controller(ctx, cl)
	batch := segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: []byte("first")}}), 1, segment.CodecNone, time.Now().UnixMilli())
	latency.Sequential(b, "topics", b.N, func(i int) error {
		name := fmt.Sprint("first-", i)
		if err := createThrough(ctx, cl, controller, name); err != nil {
			return err
		}
		return produceFirst(ctx, cl, name, batch)
	})
}

// produceFirst produces batch to partition 0 of topic through its leader,
// asking random nodes who that is until one knows and the leader takes it.
func produceFirst(ctx context.Context, cl *kgo.Client, topic string, batch []byte) error {
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		md := kmsg.NewPtrMetadataRequest()
		md.AllowAutoTopicCreation = false // as kgo's producer asks
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		md.Topics = append(md.Topics, mt)
		r, err := md.RequestWith(ctx, cl.Broker(1+rand.IntN(3)))
		if err != nil {
			return err
		}
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Leader < 1 {
			last = fmt.Errorf("no leader known for %s", topic)
			continue
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10_000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic, pt.TopicID = topic, r.Topics[0].TopicID
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = batch
		pt.Partitions = append(pt.Partitions, pp)
		req.Topics = append(req.Topics, pt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(r.Topics[0].Partitions[0].Leader)))
		if err != nil {
			return err
		}
		if err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err == nil || !kerr.IsRetriable(err) {
			return err
		}
		last = err
	}
	return fmt.Errorf("%s: no first message within 10 s: %w", topic, last)
}
