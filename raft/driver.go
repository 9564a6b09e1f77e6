package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Transport carries messages between nodes. Send must not block: a
// transport that cannot keep up drops messages (Raft retries), never
// queues without bound.
type Transport interface {
	Send(m Message)
}

// DriverConfig configures a Driver.
type DriverConfig struct {
	Node Config
	// Tick is the length of a tick. Default 20 ms: with the default 15
	// election ticks a follower waits 300-600 ms for a silent leader.
	Tick    time.Duration
	Storage *Storage
	// Restored is what Storage held at open.
	Restored  Restored
	Transport Transport
	// Apply is called with the entries each Ready commits, in order, on
	// the driver's goroutine (all of them at once, so that the
	// application can make them durable together).
	Apply func([]Entry)
	// ApplySnapshot is called, on the driver's goroutine, with a leader's
	// snapshot that replaced this node's log (once persisted, before the
	// entries after it are applied): the application's state becomes the
	// one the snapshot holds.
	ApplySnapshot func(Snapshot)
	// OnRole is called when the role or the known leader changes.
	OnRole func(role Role, term uint64, leader int32)
	// OnFail is called, on the driver's goroutine, when the driver stops
	// because its state cannot be persisted (the node can no longer vote,
	// lead or follow).
	OnFail func(error)
	Logger *slog.Logger
}

// ErrStopped is returned by a Driver that has stopped.
var ErrStopped = errors.New("raft: driver stopped")

// Driver runs a Node: one goroutine turns a clock into ticks, feeds it
// received messages and proposals, persists what each Ready asks (synced;
// a follower's or candidate's messages leave only after, a leader's
// appends while it persists), applies committed entries and reports role
// changes.
type Driver struct {
	cfg   DriverConfig
	node  *Node
	recv  chan Message
	calls chan func()
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu     sync.Mutex
	status Status

	answered map[int32]time.Time // when each peer last answered an append or a heartbeat (driver goroutine)
	failed   error               // a write of the state that failed outside a Ready (driver goroutine)
}

// NewDriver starts a node's driver.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 20 * time.Millisecond
	}
	if cfg.Node.ElectionTicks <= 0 {
		cfg.Node.ElectionTicks = 15
	}
	if cfg.Node.HeartbeatTicks <= 0 {
		cfg.Node.HeartbeatTicks = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Storage == nil || cfg.Transport == nil {
		return nil, errors.New("raft: a driver needs storage and a transport")
	}
	n, err := New(cfg.Node, cfg.Restored)
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, node: n, recv: make(chan Message, 1024), calls: make(chan func()), stop: make(chan struct{}), done: make(chan struct{}),
		answered: map[int32]time.Time{}}
	d.status = n.Status()
	go d.run()
	return d, nil
}

// Step hands the node a message from the transport; it drops the message
// when the node is behind (the sender retries).
func (d *Driver) Step(m Message) {
	select {
	case d.recv <- m:
	default:
	}
}

// do runs fn on the driver's goroutine.
func (d *Driver) do(ctx context.Context, fn func()) error {
	select {
	case d.calls <- fn:
		return nil
	case <-d.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Propose appends data to the log through the leader (this node).
func (d *Driver) Propose(ctx context.Context, data []byte) error {
	errc := make(chan error, 1)
	if err := d.do(ctx, func() { errc <- d.node.Propose(data) }); err != nil {
		return err
	}
	return <-errc
}

// TransferLeadership asks this node, the leader, to hand over to another.
func (d *Driver) TransferLeadership(ctx context.Context, to int32) error {
	errc := make(chan error, 1)
	if err := d.do(ctx, func() { errc <- d.node.TransferLeadership(to) }); err != nil {
		return err
	}
	return <-errc
}

// AddLearner has this node, whenever it leads, replicate its log to node
// id, which is not a voter (Node.AddLearner).
func (d *Driver) AddLearner(ctx context.Context, id int32) error {
	return d.do(ctx, func() { d.node.AddLearner(id) })
}

// Compact replaces the log up to index, which Apply has been given, with a
// snapshot holding data (the application's state after that entry): it is
// persisted, the entries go from memory and storage, and a follower that
// needs them is sent the snapshot instead. If the storage cannot write it,
// the driver stops, as when a Ready cannot be persisted: the file may be
// replaced while its new name is not durable, and the node would go on
// writing where a restart may not look.
func (d *Driver) Compact(ctx context.Context, index uint64, data []byte) error {
	errc := make(chan error, 1)
	if err := d.do(ctx, func() {
		err := d.node.Compact(index, data)
		if err == nil {
			snap := d.node.log.snap
			if err = d.cfg.Storage.Compact(&snap); err != nil {
				d.failed = fmt.Errorf("compact: %w", err)
			}
		}
		errc <- err
	}); err != nil {
		return err
	}
	return <-errc
}

// Status is the node's state as of its last Ready.
func (d *Driver) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Stop stops the driver and waits for it.
func (d *Driver) Stop() {
	d.once.Do(func() { close(d.stop) })
	<-d.done
}

func (d *Driver) run() {
	defer close(d.done)
	ticker := time.NewTicker(d.cfg.Tick)
	defer ticker.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-ticker.C:
			d.node.Tick()
		case m := <-d.recv:
			d.step(m)
		case fn := <-d.calls:
			fn()
		}
		d.drain()
		if err := d.ready(); err != nil {
			// The disk refused a write: this node cannot keep its promises
			// (a vote, an acknowledged entry). Stop rather than go on.
			d.cfg.Logger.Error("raft: stopping, state cannot be persisted", "error", err)
			if d.cfg.OnFail != nil {
				d.cfg.OnFail(err)
			}
			return
		}
	}
}

// step hands the node a message, noting when a peer answered.
func (d *Driver) step(m Message) {
	if m.Type == MsgAppResp || m.Type == MsgHeartbeatResp {
		d.answered[m.From] = time.Now()
	}
	d.node.Step(m)
}

// PeerProgress is what the leader knows of a peer's copy of its log.
type PeerProgress struct {
	// Match is the last index the peer holds as the leader's, as it
	// acknowledged; AnsweredAt when it last answered (zero: not yet).
	Match      uint64
	AnsweredAt time.Time
}

// Progress returns, on the leader, each peer's progress and the leader's
// last index; nil elsewhere.
func (d *Driver) Progress(ctx context.Context) (map[int32]PeerProgress, uint64, error) {
	type result struct {
		prs  map[int32]PeerProgress
		last uint64
	}
	res := make(chan result, 1)
	if err := d.do(ctx, func() {
		var r result
		if d.node.role == Leader {
			r.prs, r.last = map[int32]PeerProgress{}, d.node.log.lastIndex()
			for id, pr := range d.node.prs {
				if id != d.node.id {
					r.prs[id] = PeerProgress{Match: pr.match, AnsweredAt: d.answered[id]}
				}
			}
		}
		res <- r
	}); err != nil {
		return nil, 0, err
	}
	r := <-res
	return r.prs, r.last, nil
}

// drain takes what else is waiting, so that one Ready (one sync) covers
// many messages and proposals.
func (d *Driver) drain() {
	for range 256 {
		select {
		case m := <-d.recv:
			d.step(m)
		case fn := <-d.calls:
			fn()
		default:
			return
		}
	}
}

// ready does what the node asks: persist (synced), send, apply, advance.
func (d *Driver) ready() error {
	if d.failed != nil {
		return d.failed
	}
	for {
		rd := d.node.Ready()
		if rd.Empty() {
			return nil
		}
		// A leader sends its appends while it persists its own entries (the
		// Raft thesis, 10.2.1): its own copy counts towards a commit only
		// once Advance finds it durable, and its term and vote were made
		// durable before it asked for votes. Anything else is sent once
		// what it promises (a vote, acknowledged entries) is durable.
		send := func() {
			for _, m := range rd.Messages {
				d.cfg.Transport.Send(m)
			}
		}
		early := d.node.role == Leader
		if early {
			send()
		}
		if rd.HardState != nil || rd.Snapshot != nil || len(rd.Entries) > 0 {
			if err := d.cfg.Storage.Save(rd.HardState, rd.Snapshot, rd.Entries); err != nil {
				return fmt.Errorf("persist: %w", err)
			}
		}
		if !early {
			send()
		}
		if rd.Snapshot != nil && d.cfg.ApplySnapshot != nil {
			d.cfg.ApplySnapshot(*rd.Snapshot)
		}
		if d.cfg.Apply != nil && len(rd.CommittedEntries) > 0 {
			d.cfg.Apply(rd.CommittedEntries)
		}
		if rd.RoleChanged && d.cfg.OnRole != nil {
			d.cfg.OnRole(rd.Role, d.node.term, rd.Leader)
		}
		d.node.Advance(rd)
		d.mu.Lock()
		d.status = d.node.Status()
		d.mu.Unlock()
	}
}
