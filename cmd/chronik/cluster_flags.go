package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/chronik-stream/chronik/cluster"
	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka"
	"github.com/chronik-stream/chronik/segment"
)

// clusterFlags are start's flags for running as one node of a cluster.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "voters", EnvVars: []string{"CHRONIK_VOTERS"}, Usage: "node ids of the controller voters, e.g. 1,2,3: runs this node as one of a cluster (default: a single node, its own controller); a node not among them is a broker that takes the controller's metadata"},
		&cli.IntFlag{Name: "bootstrap-expect", EnvVars: []string{"CHRONIK_BOOTSTRAP_EXPECT"}, Usage: "instead of --voters: wait until gossip shows this many nodes and make the lowest ids the voters (kept for later starts); a node started after they formed takes their voters"},
		&cli.StringFlag{Name: "join", EnvVars: []string{"CHRONIK_JOIN"}, Usage: "gossip addresses (host:port,...) of nodes already running, to find the cluster through"},
		&cli.StringFlag{Name: "replication-addr", Value: "127.0.0.1:9291", EnvVars: []string{"CHRONIK_REPLICATION_ADDR"}, Usage: "address for Raft and metadata shipping between nodes"},
		&cli.StringFlag{Name: "gossip-addr", Value: "127.0.0.1:7946", EnvVars: []string{"CHRONIK_GOSSIP_ADDR"}, Usage: "address for gossip (memberlist, TCP and UDP)"},
		&cli.StringFlag{Name: "metadata-acks", Value: "quorum", EnvVars: []string{"CHRONIK_METADATA_ACKS"}, Usage: "quorum: a metadata change is answered once a majority of voters holds it; leader: once the controller has synced it, faster, but a controller that crashes may lose changes it answered"},
		&cli.BoolFlag{Name: "disable-metadata-wal", EnvVars: []string{"CHRONIK_DISABLE_METADATA_WAL"}, Usage: "carry metadata changes as Raft log entries (the fallback path) instead of shipping the metadata log; the log on disk is the same"},
		&cli.DurationFlag{Name: "fence-after", Value: 5 * time.Second, EnvVars: []string{"CHRONIK_FENCE_AFTER"}, Usage: "how long a broker gossip reports failed keeps its partitions before the controller fences it"},
	}
}

// clusterMember is a started cluster node as the Kafka broker uses it.
type clusterMember struct {
	node    *cluster.Node
	fatal   chan error // the node left the quorum: the process must stop
	timeout time.Duration
	leader  bool // --metadata-acks=leader
}

func (m *clusterMember) Append(events ...eventlog.Event) (int64, error) {
	if m.leader {
		return m.node.AppendLeaderAcked(events...)
	}
	return m.node.Append(m.timeout, events...)
}

func (m *clusterMember) AppendRelayed(events ...eventlog.Event) (kafka.Uncommitted, error) {
	if m.leader {
		_, err := m.node.AppendLeaderAcked(events...)
		return kafka.Uncommitted{}, err
	}
	end, epoch, err := m.node.AppendDurable(m.timeout, events...)
	return kafka.Uncommitted{End: end, Epoch: epoch}, err
}

func (m *clusterMember) WaitCommit(u kafka.Uncommitted) bool {
	return m.node.WaitCommit(u.End, u.Epoch, m.timeout)
}

func (m *clusterMember) Controller() (int32, bool) { return m.node.Controller() }

func (m *clusterMember) Up(id int32) bool { return m.node.Up(id) }

func (m *clusterMember) Quorum() kafka.Quorum {
	s := m.node.Stats()
	q := kafka.Quorum{Leader: s.Controller, Epoch: s.Epoch, Voters: s.Voters, Observers: s.Observers, Replicas: map[int32]kafka.QuorumReplica{}}
	if q.Leader == 0 {
		q.Leader = -1
	}
	for id, f := range s.Followers {
		q.Replicas[id] = kafka.QuorumReplica{LogEnd: f.End, LastFetch: f.AckedAt, LastCaughtUp: f.CaughtUpAt}
	}
	return q
}

func (m *clusterMember) Settle(max time.Duration) { m.node.Settle(max) }

func (m *clusterMember) NotController(err error) bool {
	return errors.Is(err, cluster.ErrNotController)
}

func parseVoters(s string, self int32) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--voters %q: %q is not a node id; list the voters' ids, as in --voters 1,2,3", s, f)
		}
		out = append(out, int32(n))
	}
	if err := cluster.CheckVoters(out, self); err != nil {
		return nil, fmt.Errorf("--voters %q: %w (--node-id is %d)", s, err, self)
	}
	return out, nil
}

// checkNonVoter checks the flags of a node that is not among the voters:
// a broker that takes the controller's metadata, which finds the cluster
// through --join.
func checkNonVoter(c *cli.Context, voters []int32, self int32) error {
	if slices.Contains(voters, self) {
		return nil
	}
	if c.String("join") == "" {
		return fmt.Errorf("--node-id %d is not among --voters %s: a node that is not a voter serves as a broker and takes the controller's metadata; "+
			"give --join, the gossip address of a node of the cluster", self, c.String("voters"))
	}
	return nil
}

// checkClusterFlags checks the cluster's flags before anything starts: the
// addresses other nodes connect to, the seeds to join, the fencing grace.
func checkClusterFlags(c *cli.Context) error {
	repl := c.String("replication-addr")
	if host, port, err := splitAddr(repl); err != nil || !reachable(host, port) {
		return fmt.Errorf("--replication-addr %q must be host:port that the other nodes can reach", repl)
	}
	if v := c.String("gossip-addr"); v != "" {
		if _, _, err := splitAddr(v); err != nil {
			return fmt.Errorf("--gossip-addr %q: %v", v, err)
		}
	}
	if j := c.String("join"); j != "" {
		for _, seed := range strings.Split(j, ",") {
			host, port, err := splitAddr(strings.TrimSpace(seed))
			if err != nil || !reachable(host, port) {
				return fmt.Errorf("--join %q: %q is not the host:port of another node's gossip address", j, seed)
			}
		}
	}
	if d := c.Duration("fence-after"); d <= 0 {
		return fmt.Errorf("--fence-after %v: give how long a failed broker keeps its partitions, e.g. 5s", d)
	}
	return nil
}

// startClusterNode starts Raft, shipping and gossip for this node.
func startClusterNode(c *cli.Context, id int32, voters []int32, meta *eventlog.Log, kafkaAddr, clusterID string, log *slog.Logger) (*clusterMember, error) {
	replAddr := c.String("replication-addr")
	ln, err := net.Listen("tcp", replAddr)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("cannot listen on --replication-addr %s: %v (is another node running there?)", replAddr, err), 1)
	}
	fatal := make(chan error, 1)
	var join []string
	if j := c.String("join"); j != "" {
		join = strings.Split(j, ",")
	}
	node, err := cluster.StartNode(cluster.NodeConfig{
		ID: id, Voters: voters, Meta: meta, RaftDir: filepath.Join(c.String("data-dir"), cluster.RaftDir),
		Replication: ln, ReplicationAddr: replAddr, KafkaAddr: kafkaAddr,
		GossipAddr: c.String("gossip-addr"), Join: join, FenceAfter: c.Duration("fence-after"), Logger: log,
		BootstrapExpect: c.Int("bootstrap-expect"),
		ClusterID:       clusterID,
		// The cluster-id file says which cluster this node's data is of: a
		// node that joined a cluster takes its id in place of the one its
		// first start made.
		OnClusterID: func(held string) {
			if held == clusterID {
				return
			}
			if err := keepClusterID(segment.OSFS{}, c.String("data-dir"), held); err != nil {
				log.Warn("cannot keep the cluster's id in the data directory", "cluster_id", held, "error", err)
				return
			}
			log.Info("the data directory's cluster-id now holds the cluster's id", "cluster_id", held, "was", clusterID)
		},
		Fallback: c.Bool("disable-metadata-wal"),
		OnFatal: func(err error) {
			select {
			case fatal <- err:
			default:
			}
		},
	})
	if err != nil {
		ln.Close()
		return nil, cli.Exit(err.Error(), 1)
	}
	return &clusterMember{node: node, fatal: fatal, timeout: 10 * time.Second, leader: c.String("metadata-acks") == "leader"}, nil
}
