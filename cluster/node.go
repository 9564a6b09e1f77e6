package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/gossip"
	"github.com/chronik-stream/chronik/raft"
	"github.com/chronik-stream/chronik/segment"
)

// NodeConfig configures a cluster member.
type NodeConfig struct {
	ID     int32
	Voters []int32
	// Meta is this node's copy of the metadata log, opened Replicated.
	Meta *eventlog.Log
	// RaftDir holds Raft's durable state, on FS (nil: the operating
	// system's file system).
	RaftDir string
	FS      segment.FS
	// Replication is the replication port's listener; ReplicationAddr and
	// KafkaAddr are what the others are told.
	Replication     net.Listener
	ReplicationAddr string
	KafkaAddr       string
	// Gossip: the bind address, the seeds, and local-network timings.
	GossipAddr  string
	Join        []string
	GossipLocal bool
	// FenceAfter is how long a broker gossip reports failed stays unfenced
	// (a restart within it is not a failure). Default 5 s.
	FenceAfter time.Duration
	// Tick is Raft's tick. Default 20 ms.
	Tick time.Duration
	// ClusterID is this node's own cluster id; the first controller writes
	// its own to the metadata (broker config "cluster.id" of the cluster
	// default resource), where every node then reads it.
	ClusterID string
	// OnClusterID is called once this node knows the id of the cluster
	// whose metadata it holds: during StartNode if its metadata log holds
	// one, else once a controller's is committed here (the node joined).
	// Gossip tells it the others, and nodes of another cluster are
	// refused. The process keeps it (the cluster-id file). May be nil.
	OnClusterID func(id string)
	// BootstrapExpect, when Voters is nil, waits until gossip shows this
	// many nodes and makes them the voters (kept in RaftDir, so that
	// restarts keep them).
	BootstrapExpect int
	// OnFatal is called once if this node can no longer keep its promises
	// (its metadata log failed): it has stopped Raft, so that the others
	// elect a controller; the process should exit. Nil logs only.
	OnFatal func(error)
	// Fallback carries metadata changes as Raft log entries instead of
	// shipping the metadata log (--disable-metadata-wal). Meta must then be
	// opened without Replicated, without automatic snapshots and with
	// KeepSegments: Raft's compaction takes its snapshots.
	Fallback bool
	// RaftCompactEntries is how many entries the fallback path applies
	// between compactions of Raft's log; 0 is DefaultRaftCompactEntries.
	RaftCompactEntries int
	// RaftCompactBytes is how many bytes of entries it applies between
	// them, whichever comes first; 0 is DefaultRaftCompactBytes.
	RaftCompactBytes int64
	Logger           *slog.Logger
}

// Node is a running cluster member: Raft elects the controller among the
// voters; the controller ships the metadata log, registers the brokers
// gossip finds and fences those it loses; the others follow.
type Node struct {
	cfg      NodeConfig
	lg       *slog.Logger
	tr       *raft.TCPTransport
	st       *raft.Storage
	drv      *raft.Driver
	gsp      *gossip.Gossip
	follower *Follower
	failOnce sync.Once // fatal
	// catch_up.go: catchingUp, this node started with an empty data
	// directory in a cluster that had formed, and has not yet taken what
	// it committed (marked: its file is written); pristine, it holds
	// nothing and has seen no formed cluster.
	catchingUp, marked, pristine atomic.Bool

	mu       sync.Mutex
	ctrl     *Controller
	ctrlTerm uint64
	termDone uint64                // the last term whose first batch committed
	members  map[int32]gossip.Meta // live members other than this node
	failed   map[int32]time.Time   // when gossip reported them failed
	leader   int32
	// clusterID is the id of the cluster whose metadata this node holds
	// (empty until it holds one).
	clusterID string

	cut func(id int32) bool // the fault hook, see SetCut

	// leading: this node is the controller (both paths; ctrl is the fast
	// path's shipper).
	leading bool
	// The fallback path: proposals waiting to be applied, by sequence
	// (from firstSeq on), and where the metadata log's replay of Raft
	// entries stands (driver goroutine only).
	seq     uint64
	waiters map[uint64]chan applied
	replay  int64
	// Compaction of Raft's log on the fallback path (under mu): the
	// entries applied since the last one (and their bytes since the last
	// started), whether one runs, and the metadata offset of the last Raft
	// snapshot.
	applied      []indexOffset
	appliedBytes int64
	compacting   bool
	compactedAt  int64
	bg           sync.WaitGroup // compactions; started by the driver
	// handedOff is when this controller last handed its role on for a
	// full disk (handOff; under mu).
	handedOff time.Time

	roles chan roleChange
	kick  chan struct{} // capacity 1: the controller has work to check
	quit  chan struct{}
	wg    sync.WaitGroup
}

type roleChange struct {
	role   raft.Role
	term   uint64
	leader int32
}

// metaView is the metadata log as the fast path's Raft compares it for
// votes; a rise of Raft's term fences the follower, which then takes
// nothing more from a controller of an older epoch.
type metaView struct {
	l *eventlog.Log
	f *Follower
}

func (v metaView) Last() (uint64, uint64) {
	end, epoch := v.l.End()
	return uint64(max(epoch, 0)), uint64(end)
}

func (v metaView) Fence(term uint64) { v.f.fence(int32(term)) }

// StartNode starts Raft on the replication listener, joins gossip and
// begins following (or leading).
func StartNode(cfg NodeConfig) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FenceAfter <= 0 {
		cfg.FenceAfter = 5 * time.Second
	}
	if cfg.FS == nil {
		cfg.FS = segment.OSFS{}
	}
	if cfg.Voters == nil && cfg.BootstrapExpect < 1 {
		return nil, errors.New("cluster: give the voters, or how many nodes to wait for (bootstrap-expect)")
	}
	if cfg.ID <= 0 {
		return nil, fmt.Errorf("cluster: node id %d: the nodes of a cluster have positive ids (Raft takes 0 for no node)", cfg.ID)
	}
	if cfg.Voters != nil {
		if err := CheckVoters(cfg.Voters, cfg.ID); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if err := checkNonVoter(cfg); err != nil {
			return nil, err
		}
	}
	n := &Node{cfg: cfg, lg: cfg.Logger, follower: NewFollower(cfg.Meta, cfg.Logger), members: map[int32]gossip.Meta{},
		failed: map[int32]time.Time{}, roles: make(chan roleChange, 64), kick: make(chan struct{}, 1), quit: make(chan struct{}),
		waiters: map[uint64]chan applied{}, seq: firstSeq()}
	var logView raft.LogView = metaView{cfg.Meta, n.follower}
	var apply func([]raft.Entry)
	if cfg.Fallback {
		logView, apply = nil, n.applyEntries
		n.replay = cfg.Meta.Segment().StartOffset()
	}
	st, restored, err := raft.OpenStorage(cfg.FS, filepath.Clean(cfg.RaftDir), cfg.Logger)
	if err != nil {
		return nil, err
	}
	// Before the replication port serves: no controller older than the
	// Raft term this node last knew is taken (Raft fences again as the
	// term rises).
	n.follower.fence(int32(restored.HardState.Term))
	var applySnapshot func(raft.Snapshot)
	if end, _ := cfg.Meta.End(); cfg.Fallback && end > 0 && restored.Empty() {
		st.Close()
		return nil, fmt.Errorf("cluster: this node's metadata log holds %d events and its Raft log none: on the Raft fallback path (--disable-metadata-wal) the metadata log is written from Raft's log only, "+
			"so this data comes from a single node or the fast path; start the node without --disable-metadata-wal, or with an empty data directory", end)
	}
	if cfg.Fallback {
		if restored.Snapshot != nil {
			if err := n.restoreSnapshot(*restored.Snapshot); err != nil {
				st.Close()
				return nil, err
			}
		}
		applySnapshot = func(s raft.Snapshot) {
			if err := n.restoreSnapshot(s); err != nil {
				go n.fatal(err) // fatal stops the driver: not on its goroutine
			}
		}
	}
	catchingUp, pristine, err := openCatchUp(cfg.FS, filepath.Clean(cfg.RaftDir), restored, cfg.Meta)
	if err != nil {
		st.Close()
		return nil, err
	}
	n.catchingUp.Store(catchingUp)
	n.marked.Store(catchingUp)
	n.pristine.Store(pristine)
	n.st = st
	n.tr = raft.NewTCPTransport(cfg.ID, cfg.Replication, nil, func(m raft.Message) {
		if d := n.driver(); d != nil {
			d.Step(m)
		}
	}, cfg.Logger)
	n.tr.Handle(StreamMetadata, n.follower.Serve)
	// The cluster this node's metadata is of, if it holds any: gossip and
	// Raft refuse nodes of another (their epochs and offsets could match
	// this log's by chance), and they refuse this one.
	held, formed := heldClusterID(cfg.Meta), holdsFormed(cfg.Meta)
	n.tr.SetCluster(held)
	g, err := gossip.Start(gossip.Config{Meta: gossip.Meta{NodeID: cfg.ID, KafkaAddr: cfg.KafkaAddr, ReplicationAddr: cfg.ReplicationAddr, ClusterID: held, Voters: cfg.Voters, Formed: formed},
		BindAddr: cfg.GossipAddr, Join: cfg.Join, Local: cfg.GossipLocal, Logger: cfg.Logger})
	if err != nil {
		n.tr.Close()
		st.Close()
		return nil, err
	}
	n.gsp = g
	if cfg.Voters != nil {
		// Nodes holding other voters would count other majorities: two
		// controllers could be elected at once.
		err = sameVoters(g.Members(), cfg.Voters, "was given")
	} else {
		cfg.Voters, err = n.bootstrapVoters()
		n.cfg.Voters = cfg.Voters
	}
	if err != nil {
		g.Shutdown()
		n.tr.Close()
		st.Close()
		return nil, err
	}
	for _, m := range g.Members() {
		n.seeFormed(m) // before Raft asks this node for a vote
	}
	if !slices.Contains(cfg.Voters, cfg.ID) {
		// A Raft learner: it hears the leader but has no vote.
		n.lg.Info("this node is not a voter: it takes the controller's metadata and serves as a broker", "node_id", cfg.ID, "voters", cfg.Voters)
	}
	drv, err := raft.NewDriver(raft.DriverConfig{
		Node:          raft.Config{ID: cfg.ID, Voters: cfg.Voters, Log: logView, MayCampaign: n.mayCampaign, MayVote: n.mayVote, Seed: uint64(time.Now().UnixNano())},
		Apply:         apply,
		ApplySnapshot: applySnapshot,
		Tick:          cfg.Tick,
		Storage:       st,
		Restored:      restored,
		Transport:     n.tr,
		OnRole: func(role raft.Role, term uint64, leader int32) {
			n.roles <- roleChange{role, term, leader}
		},
		// Raft's state on disk cannot be written: leave the quorum and exit,
		// as when the metadata log fails (fatal stops the driver: not on its
		// goroutine).
		OnFail: func(err error) { go n.fatal(fmt.Errorf("raft: %w", err)) },
		Logger: cfg.Logger,
	})
	if err != nil {
		g.Shutdown()
		n.tr.Close()
		st.Close()
		return nil, err
	}
	n.mu.Lock()
	n.drv = drv
	n.mu.Unlock()
	for _, m := range g.Members() {
		n.memberUp(m)
	}
	if held != "" {
		n.learnClusterID(held)
	} else {
		n.wg.Go(n.awaitClusterID)
	}
	n.wg.Go(n.loop)
	n.wg.Go(n.controllerWork)
	n.wg.Go(func() { n.catchUp(formed) })
	return n, nil
}

// checkNonVoter checks a node that is not among the voters: a Raft learner
// that takes the controller's metadata as a broker; it finds the cluster
// through gossip.
func checkNonVoter(cfg NodeConfig) error {
	if slices.Contains(cfg.Voters, cfg.ID) {
		return nil
	}
	if len(cfg.Join) == 0 {
		return fmt.Errorf("cluster: node %d is not among the voters %v: a node that is not a voter takes the controller's metadata as a broker, and finds the cluster through --join", cfg.ID, cfg.Voters)
	}
	return nil
}

// mayCampaign: a node that holds no cluster's metadata does not campaign
// while gossip shows one that does. Nodes with empty logs would otherwise
// elect one of them as a majority may, and form a new cluster beside the
// node that holds one (started first as the first node of a cluster, a
// single node's data); they take its cluster once it leads.
func (n *Node) mayCampaign() bool {
	if n.catchingUp.Load() {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.clusterID != "" {
		return true
	}
	for _, m := range n.members {
		if m.ClusterID != "" {
			return false
		}
	}
	return true
}

// ClusterID is the id of the cluster whose metadata this node holds;
// empty while it holds none.
func (n *Node) ClusterID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clusterID
}

func (n *Node) learnClusterID(id string) {
	n.mu.Lock()
	n.clusterID = id
	n.mu.Unlock()
	if n.cfg.OnClusterID != nil {
		n.cfg.OnClusterID(id)
	}
}

// awaitClusterID waits, on a node that held no metadata at its start,
// until a cluster's id is committed here, then tells gossip and
// OnClusterID: from then on this node is that cluster's.
func (n *Node) awaitClusterID() {
	for {
		var id string
		var next int64
		n.cfg.Meta.View(func(s *eventlog.State) { id, next = s.BrokerConfigs[""][clusterIDConfig], s.Offset+1 })
		if id != "" {
			n.lg.Info("this node now holds cluster "+id+"'s metadata", "node_id", n.cfg.ID, "cluster_id", id)
			n.learnClusterID(id)
			n.tr.SetCluster(id)
			if err := n.gsp.SetClusterID(id, time.Second); err != nil {
				n.lg.Warn("gossip: cannot tell the others this node's cluster id yet (they learn it with its next state exchange)", "error", err)
			}
			return
		}
		select {
		case <-n.quit:
			return
		default:
		}
		n.cfg.Meta.WaitApplied(next, 100*time.Millisecond)
	}
}

func (n *Node) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// controllerWork does the controller's own appends, off the event loop
// (they wait for a majority): the term's first batch, then the brokers'
// registrations and fencing; again at every change and periodically.
func (n *Node) controllerWork() {
	tick := time.NewTicker(n.cfg.FenceAfter / 4)
	defer tick.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-n.kick:
		case <-tick.C:
		}
		if err := n.cfg.Meta.Failed(); err != nil {
			n.fatal(err)
			return
		}
		n.mu.Lock()
		leading, term, done := n.leading, n.ctrlTerm, n.termDone
		n.mu.Unlock()
		if !leading {
			continue
		}
		if done != term {
			if _, err := n.Append(10*time.Second, &eventlog.LeaderChanged{Term: int64(term), Leader: n.cfg.ID, Voters: n.cfg.Voters}); err != nil {
				n.lg.Warn("controller: cannot commit the new term", "term", term, "error", err)
				continue
			}
			n.mu.Lock()
			n.termDone = term
			n.mu.Unlock()
			// Elected and committed: this node's log is the cluster's
			// (catch_up.go).
			n.pristine.Store(false)
		}
		n.recordClusterID()
		n.reconcileBrokers()
	}
}

// fatal stops this node's part in the cluster after its metadata log or
// Raft's storage failed: no more votes or leadership (Raft stops), no more
// shipping, and OnFatal tells the process (once).
func (n *Node) fatal(err error) {
	n.failOnce.Do(func() {
		n.lg.Error("this node cannot keep its state on disk: it leaves the quorum", "error", err)
		n.stepDown()
		if d := n.driver(); d != nil {
			d.Stop()
		}
		if n.cfg.OnFatal != nil {
			n.cfg.OnFatal(err)
		}
	})
}

func (n *Node) driver() *raft.Driver {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.drv
}

// Voters are the controller voters (given, or chosen at bootstrap).
func (n *Node) Voters() []int32 { return slices.Clone(n.cfg.Voters) }

// GossipAddr is where this node's gossip listens, for others to join.
func (n *Node) GossipAddr() string { return n.gsp.Addr() }

// Controller returns the controller Raft elected, as far as this node
// knows (raft.None if none), and whether it is this node.
func (n *Node) Controller() (int32, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader, n.leader == n.cfg.ID && n.leading
}

// Settle waits, up to max, until this node has applied every metadata
// batch it holds. The controller ships a batch before it commits it, so
// a change it has committed and answered is served here too once this
// returns, when its batch came before the call (it commits within a
// millisecond, or not at all if the controller fails first). On the
// fallback path the metadata log holds committed batches only: it
// returns at once.
func (n *Node) Settle(max time.Duration) {
	end, _ := n.cfg.Meta.End()
	n.cfg.Meta.WaitApplied(end, max)
}

// SetCut is a fault hook for tests: this node neither sends to nor takes
// from the nodes cut reports (Raft messages and metadata shipping); nil
// heals. Open shipping sessions end within a heartbeat.
func (n *Node) SetCut(cut func(id int32) bool) {
	if cut == nil {
		n.tr.SetFilter(nil)
	} else {
		n.tr.SetFilter(func(m raft.Message) bool { return !cut(m.From) && !cut(m.To) })
	}
	n.mu.Lock()
	n.follower.mu.Lock()
	n.follower.cut = cut
	if cut != nil && n.follower.current != nil {
		n.follower.current.Close()
	}
	n.follower.mu.Unlock()
	n.cut = cut
	c := n.ctrl
	n.mu.Unlock()
	if c != nil {
		c.setCut(cut)
	}
}

// Up reports whether gossip sees a node alive (this one always).
func (n *Node) Up(id int32) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.members[id]
	return ok || id == n.cfg.ID
}

// ErrNotController: metadata may be appended only on the controller.
var ErrNotController = errors.New("cluster: this node is not the controller")

// ErrNotCommitted: a majority of the voters did not hold a change within
// the time asked for. The change may still commit later. The errors that
// wrap it wrap context.DeadlineExceeded too (Kafka's REQUEST_TIMED_OUT).
var ErrNotCommitted = errors.New("cluster: a metadata change was not committed by a majority in time")

// Append appends metadata events on the controller and waits until a
// majority of the voters holds them.
func (n *Node) Append(timeout time.Duration, events ...eventlog.Event) (int64, error) {
	if n.cfg.Fallback {
		return n.appendRaft(timeout, events...)
	}
	c, off, err := n.appendOwn(events...)
	if err != nil {
		return 0, err
	}
	return off, c.WaitCommitted(off+int64(len(events)), timeout)
}

// AppendLeaderAcked appends metadata events on the controller and returns
// once the controller's own copy is durable, not waiting for a majority
// (--metadata-acks=leader): if the controller then crashes, a new one may
// not have them.
func (n *Node) AppendLeaderAcked(events ...eventlog.Event) (int64, error) {
	if n.cfg.Fallback {
		return n.appendRaft(10*time.Second, events...) // Raft answers on commit
	}
	_, off, err := n.appendOwn(events...)
	return off, err
}

// appendOwn appends events to this node's metadata log as the controller
// (fast path) and returns its shipper, which commits them; not the
// controller, or no longer by the time the log takes them, it is
// ErrNotController.
func (n *Node) appendOwn(events ...eventlog.Event) (*Controller, int64, error) {
	n.mu.Lock()
	c := n.ctrl
	n.mu.Unlock()
	if c == nil {
		return nil, 0, ErrNotController
	}
	off, err := n.cfg.Meta.Append(events...)
	switch {
	case errors.Is(err, eventlog.ErrNotLeading):
		return nil, 0, ErrNotController // it stepped down meanwhile
	case errors.Is(err, eventlog.ErrFailed):
		n.poke() // controllerWork notices and leaves the quorum
	case errors.Is(err, syscall.ENOSPC):
		n.handOff(c)
	}
	return c, off, err
}

// handOff passes the controller role to the voter that holds the most of
// the metadata log, when this node's disk has no room left for new topics
// (the metadata log keeps room for the changes that free space, not for
// creations): the other voters may have room, and the cluster goes on
// creating topics there, as a Kafka controller whose metadata log
// directory fails leaves it to another. At most once every handOffEvery:
// were every disk full, the role would otherwise go round.
func (n *Node) handOff(c *Controller) {
	n.mu.Lock()
	if !n.handedOff.IsZero() && time.Since(n.handedOff) < handOffEvery {
		n.mu.Unlock()
		return
	}
	n.handedOff = time.Now()
	n.mu.Unlock()
	to, ok := c.mostCaughtUp()
	if !ok {
		n.lg.Warn("controller: this node's disk has no room for new topics, and no other voter holds all the committed metadata to take over")
		return
	}
	n.lg.Warn("controller: this node's disk has no room for new topics; handing the controller role to another voter", "to", to)
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() { // a stop does not wait for the hand-off
			select {
			case <-n.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := n.TransferController(ctx, to); err != nil {
			n.lg.Warn("controller: the hand-off failed", "to", to, "error", err)
		}
	})
}

// handOffEvery bounds how often a controller hands its role on (handOff).
const handOffEvery = 30 * time.Second

// loop handles role changes and membership events, in order.
func (n *Node) loop() {
	for {
		select {
		case <-n.quit:
			n.stepDown()
			return
		case rc := <-n.roles:
			n.mu.Lock()
			n.leader = rc.leader
			n.mu.Unlock()
			if rc.role == raft.Leader {
				n.becomeController(rc.term)
			} else {
				n.stepDown()
			}
		case e := <-n.gsp.Events():
			switch e.Kind {
			case gossip.Joined, gossip.Updated:
				n.memberUp(e.Member)
			case gossip.Failed, gossip.Left:
				n.mu.Lock()
				delete(n.members, e.Member.NodeID)
				n.failed[e.Member.NodeID] = time.Now()
				n.mu.Unlock()
			}
			n.poke()
		}
	}
}

func (n *Node) memberUp(m gossip.Meta) {
	n.seeFormed(m)
	if err := sameVoters([]gossip.Meta{m}, n.cfg.Voters, "holds"); err != nil {
		// It refuses to start if it sees this node; this node keeps
		// the voters it runs with.
		n.lg.Error("a node holds other voters than this one", "node_id", m.NodeID, "its_voters", m.Voters, "voters", n.cfg.Voters, "error", err)
	}
	n.mu.Lock()
	n.members[m.NodeID] = m
	delete(n.failed, m.NodeID)
	c := n.ctrl
	n.mu.Unlock()
	n.tr.SetPeer(m.NodeID, m.ReplicationAddr)
	if d := n.driver(); d != nil && !slices.Contains(n.cfg.Voters, m.NodeID) {
		// A broker that is not a voter: Raft's leader, whichever voter it
		// is, tells it of leadership (and, on the fallback path, the
		// metadata changes).
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := d.AddLearner(ctx, m.NodeID); err != nil {
			n.lg.Warn("raft: cannot add a learner", "node_id", m.NodeID, "error", err)
		}
		cancel()
	}
	if c != nil {
		c.AddPeer(m.NodeID, m.ReplicationAddr)
	}
	n.poke()
}

// becomeController starts shipping in the new term; controllerWork
// commits the term's first batch (which commits what earlier terms left)
// and registers the brokers.
func (n *Node) becomeController(term uint64) {
	n.stepDown()
	if n.cfg.Fallback {
		n.mu.Lock()
		n.leading, n.ctrlTerm = true, term
		n.mu.Unlock()
		n.lg.Info("this node is the controller (Raft fallback path)", "node_id", n.cfg.ID, "term", term)
		n.poke()
		return
	}
	epoch := int32(term)
	n.follower.fence(epoch)
	n.cfg.Meta.Lead(epoch)
	peers := map[int32]string{}
	n.mu.Lock()
	for id, m := range n.members {
		peers[id] = m.ReplicationAddr
	}
	n.mu.Unlock()
	c := NewController(n.cfg.Meta, n.cfg.ID, epoch, n.cfg.Voters, peers, n.lg)
	n.mu.Lock()
	if n.cut != nil {
		c.setCut(n.cut)
	}
	n.ctrl, n.ctrlTerm, n.leading = c, term, true
	n.mu.Unlock()
	n.lg.Info("this node is the controller", "node_id", n.cfg.ID, "term", term)
	n.poke()
}

func (n *Node) stepDown() {
	n.mu.Lock()
	c, was := n.ctrl, n.leading
	n.ctrl, n.leading = nil, false
	n.mu.Unlock()
	if c != nil {
		// No change is written from now on (a request that found this
		// node the controller a moment ago is refused), then the
		// shipping stops.
		n.cfg.Meta.Follow()
		c.Stop()
	}
	if was {
		n.lg.Info("no longer the controller", "node_id", n.cfg.ID)
	}
}

// clusterIDConfig is the broker config (of the cluster default resource,
// "") that holds the cluster's id in the metadata.
const clusterIDConfig = "cluster.id"

// heldClusterID is the id of the cluster whose metadata l holds, committed
// or not; empty when it holds none yet.
func heldClusterID(l *eventlog.Log) (id string) {
	l.ViewAll(func(s *eventlog.State) { id = s.BrokerConfigs[""][clusterIDConfig] })
	return id
}

// recordClusterID, on the controller: the first one gives the cluster its
// id.
func (n *Node) recordClusterID() {
	if n.cfg.ClusterID == "" {
		return
	}
	have := ""
	n.cfg.Meta.View(func(s *eventlog.State) { have = s.BrokerConfigs[""][clusterIDConfig] })
	if have != "" {
		return
	}
	if _, err := n.Append(10*time.Second, &eventlog.ConfigChanged{ResourceType: eventlog.ResourceBroker, Name: clusterIDConfig, Value: n.cfg.ClusterID}); err != nil {
		n.lg.Warn("controller: cannot record the cluster id", "error", err)
	}
}

func endpoint(addr string) (eventlog.Endpoint, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return eventlog.Endpoint{}, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return eventlog.Endpoint{}, err
	}
	return eventlog.Endpoint{Listener: "PLAINTEXT", Host: host, Port: int32(port)}, nil
}

// TransferController hands the controller role to another voter (a
// graceful shutdown of the controller).
func (n *Node) TransferController(ctx context.Context, to int32) error {
	return n.driver().TransferLeadership(ctx, to)
}

// Stop leaves gossip, steps down and stops Raft.
func (n *Node) Stop() {
	close(n.quit)
	n.wg.Wait()
	n.gsp.Leave(time.Second)
	n.drv.Stop()
	n.bg.Wait()
	n.tr.Close()
	n.st.Close()
}
