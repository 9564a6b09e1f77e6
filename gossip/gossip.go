// Package gossip finds the brokers of a cluster: a thin adapter over
// hashicorp/memberlist. Each node gossips its Meta (node id, Kafka and
// replication addresses, cluster id); members joining, changing and
// failing or leaving come out as Events. Two live nodes never share a node
// id: a node that finds its id taken refuses to start, and the others
// refuse it. Nodes of two clusters refuse each other, and a node whose
// seeds are all of another cluster refuses to start.
package gossip

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a node's gossip.
type Config struct {
	Meta Meta
	// BindAddr is host:port for memberlist's TCP and UDP (default port 7946).
	BindAddr string
	// AdvertiseAddr is what the others reach; default BindAddr.
	AdvertiseAddr string
	// Join lists seeds (host:port); empty starts a new cluster.
	Join []string
	// Local uses memberlist's timings for a local network (faster failure
	// detection); default its LAN timings.
	Local  bool
	Logger *slog.Logger
}

// EventKind is what happened to a member.
type EventKind uint8

const (
	Joined EventKind = iota + 1
	Updated
	Left   // left on purpose
	Failed // stopped answering
)

func (k EventKind) String() string {
	return [...]string{"", "joined", "updated", "left", "failed"}[k]
}

// Event is a change of membership.
type Event struct {
	Kind   EventKind
	Member Meta
}

// Gossip is a running member.
type Gossip struct {
	ml     *memberlist.Memberlist
	self   Meta
	name   string
	log    *slog.Logger
	events chan Event
	quit   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu      sync.Mutex
	members map[string]member // by memberlist name, alive ones
	taken   *Meta             // another live node with this node's id, seen at join
	foreign *Meta             // a node of another cluster, seen at join
	addr    string            // this node's gossip address, once listening
	dlg     *delegate

	upd sync.Mutex // one metadata update at a time (publish)
}

// tuneMemberlist, if set, changes memberlist's configuration (a test
// hook).
var tuneMemberlist func(*memberlist.Config)

// Start joins (or starts) the cluster.
func Start(cfg Config) (*Gossip, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meta.NodeID <= 0 {
		return nil, fmt.Errorf("gossip: node id %d must be positive", cfg.Meta.NodeID)
	}
	if len(cfg.Meta.ClusterID) > MaxClusterID {
		return nil, fmt.Errorf("gossip: a cluster id of %d bytes: at most %d", len(cfg.Meta.ClusterID), MaxClusterID)
	}
	if len(cfg.Meta.Voters) > MaxVoters {
		return nil, fmt.Errorf("gossip: %d voters: at most %d", len(cfg.Meta.Voters), MaxVoters)
	}
	meta := cfg.Meta.Encode()
	longest := cfg.Meta
	longest.ClusterID = strings.Repeat("x", MaxClusterID) // SetClusterID may come
	longest.Voters = make([]int32, MaxVoters)             // and SetVoters
	if len(longest.Encode()) > maxMeta {
		// memberlist would panic.
		return nil, fmt.Errorf("gossip: this node's Kafka and replication addresses (%d and %d bytes) are too long to gossip: they may take %d bytes together; use shorter host names",
			len(cfg.Meta.KafkaAddr), len(cfg.Meta.ReplicationAddr), maxMeta-metaOverhead)
	}
	host, port, err := splitHostPort(cfg.BindAddr, 7946)
	if err != nil {
		return nil, fmt.Errorf("gossip: --gossip-addr %q: %w", cfg.BindAddr, err)
	}
	// A node's memberlist name is the same in every run: restarted at its
	// address, it is the same member, refutes what the others said of its
	// last run and brings them its new metadata at once. With a name of
	// its own each run, the others held every earlier run as a live member
	// at that address until they declared it dead, their gossip of the
	// new run went partly to those (that is, back to the node), and a
	// node could miss the new run, with its new replication address, for
	// longer than a Raft election: a node restarted twice in a few
	// seconds was cut off.
	g := &Gossip{self: cfg.Meta, name: fmt.Sprintf("chronik-%d", cfg.Meta.NodeID),
		log: cfg.Logger, events: make(chan Event, 1024), members: map[string]member{}, quit: make(chan struct{})}
	mlc := memberlist.DefaultLANConfig()
	if cfg.Local {
		mlc = memberlist.DefaultLocalConfig()
	}
	mlc.Name = g.name
	// A node that failed may come back at another address as soon as the
	// others have declared it dead (a restart elsewhere); while they hold
	// it alive, a node claiming its id elsewhere is a duplicate.
	mlc.DeadNodeReclaimTime = time.Nanosecond
	mlc.BindAddr, mlc.BindPort = host, port
	if host != "0.0.0.0" && host != "::" {
		mlc.AdvertiseAddr, mlc.AdvertisePort = host, port
	}
	if cfg.AdvertiseAddr != "" {
		if mlc.AdvertiseAddr, mlc.AdvertisePort, err = splitHostPort(cfg.AdvertiseAddr, port); err != nil {
			return nil, fmt.Errorf("gossip: advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
	}
	if tuneMemberlist != nil {
		tuneMemberlist(mlc)
	}
	g.dlg = &delegate{meta: meta}
	mlc.Delegate = g.dlg
	mlc.Events = g
	mlc.Alive = g
	mlc.Logger = log.New(&logWriter{l: cfg.Logger}, "", 0)
	ml, err := memberlist.Create(mlc)
	if err != nil {
		return nil, fmt.Errorf("gossip: cannot listen on %s: %w", cfg.BindAddr, err)
	}
	g.ml = ml
	n := ml.LocalNode()
	g.mu.Lock()
	g.addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	g.mu.Unlock()
	if len(cfg.Join) > 0 {
		if _, err := ml.Join(cfg.Join); err != nil {
			// The seeds may not be up yet (nodes started together): keep
			// trying in the background; the others find this node too
			// when they join it.
			g.log.Warn("gossip: no seed answered yet, retrying every second", "seeds", strings.Join(cfg.Join, ","), "error", err)
			g.wg.Go(func() { g.retryJoin(cfg.Join) })
		} else {
			g.wg.Go(g.announce)
		}
	}
	if other, ok := g.onlyForeign(); ok && len(cfg.Join) > 0 {
		ml.Shutdown()
		return nil, fmt.Errorf("gossip: the nodes at %s belong to cluster %s, and this node's metadata to cluster %s: "+
			"a node joins another cluster only with an empty data directory (start it with another --data-dir), "+
			"or --join a node of its own cluster", strings.Join(cfg.Join, ","), other.ClusterID, cfg.Meta.ClusterID)
	}
	if other, ok := g.duplicate(); ok {
		ml.Shutdown()
		return nil, fmt.Errorf("gossip: node id %d is already used by the node at %s (Kafka %s), which the cluster holds alive: "+
			"if that is another node, give this one another --node-id; if it is this node's last run, started at another address, "+
			"start again once the others have declared it failed (a few seconds), or at its old --gossip-addr",
			cfg.Meta.NodeID, other.ReplicationAddr, other.KafkaAddr)
	}
	return g, nil
}

// retryJoin joins the seeds once one answers, unless this node was found
// by then.
func (g *Gossip) retryJoin(seeds []string) {
	for {
		select {
		case <-g.quit:
			return
		case <-time.After(time.Second):
		}
		if g.ml.NumMembers() > 1 {
			g.announce() // somebody joined this node: the others hear of it too
			return
		}
		if _, err := g.ml.Join(seeds); err == nil {
			if other, ok := g.duplicate(); ok {
				g.log.Error("gossip: node id taken: leaving", "node_id", g.self.NodeID, "other_node", other.ReplicationAddr)
				g.ml.Shutdown()
				return
			}
			g.announce()
			return
		}
	}
}

// announce exchanges state, over TCP, with every member the join found
// (a push/pull, as a join does), so that each hears of this node at once:
// the seeds too, which heard of it before it refuted what they held of its
// last run (a node restarted at its address starts again at incarnation
// 1, and the others ignore it until it outbids the death they recorded).
// Gossip alone may not reach them: in a small cluster memberlist sends a
// message only a few times (RetransmitMult times log10 of the cluster's
// size), to random members, and a member that missed it learns of this
// node at its next full state exchange, up to PushPullInterval (15-30 s)
// later. Until then it could not reach this node's replication address:
// after all nodes of a cluster restarted at once, the controller shipped
// nothing to a node started last for 16 s.
func (g *Gossip) announce() {
	// The members as the join reported them (memberlist's own nodes are
	// not to be read outside its callbacks).
	g.mu.Lock()
	members := maps.Clone(g.members)
	g.mu.Unlock()
	for name, m := range members {
		select {
		case <-g.quit:
			return
		default:
		}
		if _, err := g.ml.Join([]string{m.addr}); err != nil {
			g.log.Debug("gossip: cannot announce this node to a member", "member", name, "address", m.addr, "error", err)
		}
	}
}

// duplicate reports another live node with this node's id, met while
// joining.
func (g *Gossip) duplicate() (Meta, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.taken == nil {
		return Meta{}, false
	}
	return *g.taken, true
}

// onlyForeign reports a node of another cluster met while joining, when
// no node of this one was.
func (g *Gossip) onlyForeign() (Meta, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.foreign == nil || len(g.members) > 0 {
		return Meta{}, false
	}
	return *g.foreign, true
}

// SetClusterID tells the others the cluster this node now belongs to (it
// held no metadata at its start, and has since taken a cluster's). Members
// of another cluster, met while this node was of none, are members no
// more: each is reported Left.
func (g *Gossip) SetClusterID(id string, timeout time.Duration) error {
	if len(id) > MaxClusterID {
		return fmt.Errorf("gossip: a cluster id of %d bytes: at most %d", len(id), MaxClusterID)
	}
	var gone []Meta
	g.upd.Lock()
	defer g.upd.Unlock()
	g.publish(func(self *Meta) {
		self.ClusterID = id
		for name, m := range g.members {
			if m.meta.ClusterID != "" && m.meta.ClusterID != id {
				delete(g.members, name)
				gone = append(gone, m.meta)
			}
		}
	})
	for _, m := range gone {
		g.log.Warn("gossip: a member is of another cluster: leaving it", "node", m.NodeID, "its_cluster", m.ClusterID, "this_cluster", id)
		select {
		case g.events <- Event{Kind: Left, Member: m}:
		default:
		}
	}
	return g.ml.UpdateNode(timeout)
}

// SetFormed tells the others that this node's metadata now holds a
// cluster that formed (Meta.Formed).
func (g *Gossip) SetFormed(timeout time.Duration) error {
	g.upd.Lock()
	defer g.upd.Unlock()
	g.publish(func(self *Meta) { self.Formed = true })
	return g.ml.UpdateNode(timeout)
}

// SetVoters tells the others the voters this node holds (it bootstrapped
// without them, and has now chosen or taken them).
func (g *Gossip) SetVoters(ids []int32, timeout time.Duration) error {
	if len(ids) > MaxVoters {
		return fmt.Errorf("gossip: %d voters: at most %d", len(ids), MaxVoters)
	}
	g.upd.Lock()
	defer g.upd.Unlock()
	g.publish(func(self *Meta) { self.Voters = slices.Clone(ids) })
	return g.ml.UpdateNode(timeout)
}

// publish changes this node's metadata. Its callers hold upd until their
// UpdateNode returns: memberlist reads the metadata, then numbers the
// update; two at once could number the older metadata last, and the
// others would keep it.
func (g *Gossip) publish(change func(self *Meta)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	change(&g.self)
	g.dlg.setMeta(g.self.Encode())
}

// member is a live peer and the gossip address it was seen at.
type member struct {
	meta Meta
	addr string
}

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// NotifyAlive refuses peers with bad metadata, peers of another cluster
// and peers that claim a node id another live member (or this node) has.
// A node restarted at the same address is not a duplicate: it is the same
// member (its name is its id), whose new run refutes what was said of the
// last.
func (g *Gossip) NotifyAlive(n *memberlist.Node) error {
	m, err := DecodeMeta(n.Meta)
	if err != nil {
		return err
	}
	addr := nodeAddr(n)
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.ClusterID != "" && g.self.ClusterID != "" && m.ClusterID != g.self.ClusterID && addr != g.addr {
		if g.foreign == nil {
			g.foreign = &m
		}
		return fmt.Errorf("gossip: %s at %s belongs to cluster %s, this node to cluster %s: nodes of two clusters do not join "+
			"(a node joins another cluster only with an empty data directory)", n.Name, addr, m.ClusterID, g.self.ClusterID)
	}
	if n.Name == g.name || m.NodeID == g.self.NodeID {
		if addr == g.addr || (n.Name == g.name && g.addr == "") {
			return nil // this node (also while it starts), or its last run here
		}
		if g.taken == nil {
			g.taken = &m
		}
		return fmt.Errorf("gossip: %s at %s claims node id %d, which is this node's", n.Name, addr, m.NodeID)
	}
	for name, other := range g.members {
		if name != n.Name && other.meta.NodeID == m.NodeID && other.addr != addr {
			return fmt.Errorf("gossip: %s at %s claims node id %d, which %s at %s has", n.Name, addr, m.NodeID, name, other.addr)
		}
	}
	return nil
}

func (g *Gossip) emit(kind EventKind, n *memberlist.Node) {
	m, err := DecodeMeta(n.Meta)
	if err != nil || n.Name == g.name || m.NodeID == g.self.NodeID {
		return
	}
	g.mu.Lock()
	if kind == Joined || kind == Updated {
		g.members[n.Name] = member{meta: m, addr: nodeAddr(n)}
	} else {
		delete(g.members, n.Name)
		for _, other := range g.members {
			if other.meta.NodeID == m.NodeID {
				// The old incarnation of a node that restarted: the node
				// itself is alive.
				g.mu.Unlock()
				return
			}
		}
	}
	g.mu.Unlock()
	select {
	case g.events <- Event{Kind: kind, Member: m}:
	default:
		g.log.Warn("gossip: event queue full, dropping an event (Members has the current view)", "kind", kind, "node", m.NodeID)
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (g *Gossip) NotifyJoin(n *memberlist.Node) { g.emit(Joined, n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (g *Gossip) NotifyUpdate(n *memberlist.Node) { g.emit(Updated, n) }

// NotifyLeave implements memberlist.EventDelegate: a member that left or
// was declared dead.
func (g *Gossip) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		g.emit(Left, n)
	} else {
		g.emit(Failed, n)
	}
}

// Addr is the address the others reach this node's gossip at.
func (g *Gossip) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.addr
}

// Events delivers membership changes (bounded: when the consumer falls
// behind, events are dropped and Members is the truth).
func (g *Gossip) Events() <-chan Event { return g.events }

// Members returns the live members other than this node, by node id.
func (g *Gossip) Members() []Meta {
	g.mu.Lock()
	defer g.mu.Unlock()
	byID := map[int32]Meta{}
	for _, m := range g.members {
		byID[m.meta.NodeID] = m.meta // a restarted node's two incarnations are one member
	}
	out := make([]Meta, 0, len(byID))
	for _, m := range byID {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// String lists the live members other than this node as name@gossip
// address, for diagnostics.
func (g *Gossip) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for name, m := range g.members {
		out = append(out, name+"@"+m.addr)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// Leave tells the others this node is going, then stops.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.stopRetry()
	err := g.ml.Leave(timeout)
	if serr := g.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops without telling anyone (the others see a failure).
func (g *Gossip) Shutdown() error {
	g.stopRetry()
	return g.ml.Shutdown()
}

func (g *Gossip) stopRetry() {
	g.once.Do(func() { close(g.quit) })
	g.wg.Wait()
}

// delegate gives memberlist this node's metadata.
type delegate struct {
	mu   sync.Mutex
	meta []byte
}

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}

func (d *delegate) setMeta(b []byte) {
	d.mu.Lock()
	d.meta = b
	d.mu.Unlock()
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// logWriter sends memberlist's log lines to slog, at debug level except
// its warnings and errors.
type logWriter struct{ l *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	switch {
	case strings.Contains(line, "[ERR]"):
		w.l.Error(line)
	case strings.Contains(line, "[WARN]"):
		w.l.Warn(line)
	default:
		w.l.Debug(line)
	}
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)

func splitHostPort(addr string, defPort int) (string, int, error) {
	if addr == "" {
		return "0.0.0.0", defPort, nil
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}
