package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

// Cluster connects a broker to its cluster (package cluster); nil runs it
// alone, its own controller.
type Cluster interface {
	// Append appends metadata events through this node if it is the
	// controller, and returns once a majority holds them; elsewhere it
	// fails with an error for which NotController reports true.
	Append(events ...eventlog.Event) (int64, error)
	// AppendRelayed is Append for a change another node relayed here: it
	// may return once this node's own copy is durable, with where the
	// change commits, and the relaying node waits for that (WaitCommit)
	// before it answers its client. The zero Uncommitted: nothing to wait
	// for (the change is committed, or answered on the controller's own
	// sync anyway: --metadata-acks=leader).
	AppendRelayed(events ...eventlog.Event) (Uncommitted, error)
	// WaitCommit waits until a change the controller answered before it
	// committed is committed and this node serves it, up to the time
	// Append waits for a commit, and reports whether it is; false also
	// when it never will be (another controller's changes took its
	// place).
	WaitCommit(u Uncommitted) bool
	// Controller is the controller this node knows of (0 for none), and
	// whether it is this node.
	Controller() (int32, bool)
	// NotController reports whether err says this node is not the
	// controller.
	NotController(err error) bool
	// Up reports whether a broker is reachable now, as gossip sees it
	// (before the controller fences one that failed).
	Up(id int32) bool
	// Settle waits, up to max, until this node serves every metadata
	// change it has received and that commits meanwhile: a change a
	// client was told is made is then in this node's answers too.
	Settle(max time.Duration)
	// Quorum describes the controller quorum as this node knows it
	// (DescribeQuorum).
	Quorum() Quorum
}

// Quorum is the controller quorum: the voters that elect the controller
// among them, and the brokers that are not voters (observers).
type Quorum struct {
	Leader            int32 // the controller; -1 if none is known
	Epoch             int32 // its epoch
	Voters, Observers []int32
	// Replicas is, on the controller, what each other node has
	// acknowledged of the metadata log.
	Replicas map[int32]QuorumReplica
}

// QuorumReplica is what the controller knows of a node's copy of the
// metadata log.
type QuorumReplica struct {
	LogEnd int64
	// LastFetch is when it last acknowledged, LastCaughtUp when it last
	// acknowledged the controller's log end (zero: never).
	LastFetch, LastCaughtUp time.Time
}

// Uncommitted is a metadata change the controller holds durably and a
// majority of the voters may not hold yet: the events of its epoch's batch
// that ends before offset End.
type Uncommitted struct {
	End   int64
	Epoch int32
}

// settleWait bounds how long a request that reads the metadata waits for
// changes this node holds to commit (Cluster.Settle): a commit point
// follows its batch within a millisecond.
const settleWait = 5 * time.Millisecond

// settle is Cluster.Settle on a node of a cluster; alone, every change is
// served once made.
func (b *Broker) settle() {
	if b.cfg.Cluster != nil {
		b.cfg.Cluster.Settle(settleWait)
	}
}

// viewLatest calls fn with the metadata a change made here is checked
// against: on the controller of a cluster, every change it has taken,
// committed or not (a change answered once the controller's own copy was
// durable, relayed through another node or with leader acks, may not be
// committed yet when its client's next request comes); elsewhere, the
// committed metadata. fn must neither keep nor change it, nor call into
// the metadata log.
func (b *Broker) viewLatest(fn func(*eventlog.State)) {
	if c := b.cfg.Cluster; c != nil {
		if _, self := c.Controller(); self {
			b.meta.ViewAll(fn)
			return
		}
	}
	b.meta.View(fn)
}

// settleMissing settles when one of the partitions named is not in the
// metadata yet: one created a moment ago through another node, whose
// commit point is on its way. The group and transaction coordinators check
// the partitions under their locks, where they must not wait.
func (b *Broker) settleMissing(parts iter.Seq2[string, int32]) {
	if b.cfg.Cluster == nil {
		return
	}
	for topic, p := range parts {
		if !b.partitionExists(topic, p) {
			b.settle()
			return
		}
	}
}

// appendMeta appends metadata events: directly on a single node, through
// the controller in a cluster. A change another node relayed (rc.relayed
// set) is answered once this node holds it durably; the relaying node
// waits for its commit (AppendRelayed).
func (b *Broker) appendMeta(rc *reqContext, events ...eventlog.Event) error {
	switch {
	case b.cfg.Cluster == nil:
		_, err := b.meta.Append(events...)
		return err
	case rc == nil || rc.relayed == nil:
		_, err := b.cfg.Cluster.Append(events...)
		return err
	}
	u, err := b.cfg.Cluster.AppendRelayed(events...)
	if err == nil && u.End > rc.relayed.End {
		*rc.relayed = u
	}
	return err
}

// appendEach appends groups of events in one batch or, if one group does
// not apply (another request changed the same thing meanwhile), each on
// its own, so that only that one fails: the error of each group.
func (b *Broker) appendEach(rc *reqContext, groups [][]eventlog.Event) []error {
	errs := make([]error, len(groups))
	err := b.appendMeta(rc, slices.Concat(groups...)...)
	for i, g := range groups {
		if errors.Is(err, eventlog.ErrRefused) && len(groups) > 1 {
			errs[i] = b.appendMeta(rc, g...)
		} else {
			errs[i] = err
		}
	}
	return errs
}

// forwarded are the APIs a node that is not the controller passes on to
// it: the metadata writes, and InitProducerId (producer ids come from the
// controller's blocks).
var forwarded = map[int16]bool{
	kmsg.CreateTopics.Int16():            true,
	kmsg.DeleteTopics.Int16():            true,
	kmsg.CreatePartitions.Int16():        true,
	kmsg.AlterConfigs.Int16():            true,
	kmsg.IncrementalAlterConfigs.Int16(): true,
	kmsg.ElectLeaders.Int16():            true,
	kmsg.InitProducerID.Int16():          true,
	kmsg.DescribeQuorum.Int16():          true, // the controller knows the followers
}

// errNoController: there is no controller to forward to yet; clients get a
// retriable error.
var errNoController = errors.New("kafka: no controller elected yet")

// forwardWait bounds how long a forwarded request waits for a controller
// to be reachable (one is being elected, or the old one just died), as
// Kafka's forwarding brokers hold requests until a controller answers.
const forwardWait = 10 * time.Second

// forward sends a request of this node's own to the controller and
// returns its response (forwardFrame says how).
func (b *Broker) forward(req kmsg.Request) (kmsg.Response, error) {
	return toController(b, func(id int32) (kmsg.Response, Uncommitted, error) { return b.relayRequest(id, req) })
}

// forwardFrame sends a client's request frame (without its size prefix)
// to the controller and returns the response frame, retrying while no
// controller is reachable, up to forwardWait. errNoController means this
// node became the controller meanwhile (or none was found in time): the
// caller serves the request itself, as it does when the change the
// controller answered does not commit (waitCommit).
func (b *Broker) forwardFrame(frame []byte) ([]byte, error) {
	return toController(b, func(id int32) ([]byte, Uncommitted, error) { return b.relayFrame(id, frame) })
}

// waitCommit waits until a change the controller answered before it
// committed (Cluster.AppendRelayed), if any, commits and this node serves
// it: the client then finds it here, and a change that may be lost (the
// controller failed before a majority held it) is not answered as made.
// Not retried: the change may yet commit, and a request made twice would
// find it made.
func (b *Broker) waitCommit(u Uncommitted) error {
	if u.End == 0 || b.cfg.Cluster.WaitCommit(u) {
		return nil
	}
	return fmt.Errorf("kafka: the controller's change before offset %d (epoch %d) was not committed in time", u.End, u.Epoch)
}

// toController calls send with the controller's id until it succeeds, or
// this node becomes the controller, or forwardWait has passed; then it
// waits for the change the answer names (waitCommit), and returns the
// answer only if that commits.
func toController[T any](b *Broker, send func(id int32) (T, Uncommitted, error)) (T, error) {
	var none T
	deadline := time.Now().Add(forwardWait)
	for {
		id, self := b.cfg.Cluster.Controller()
		err := errNoController
		if id != 0 && !self {
			var resp T
			var u Uncommitted
			if resp, u, err = send(id); err == nil {
				if err := b.waitCommit(u); err != nil {
					return none, err
				}
				return resp, nil
			}
			err = fmt.Errorf("kafka: forward to the controller: %w", err)
		}
		if self || time.Now().After(deadline) {
			return none, err
		}
		select {
		case <-b.closing:
			return none, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// placePartition chooses a new partition's leader (its only replica): this
// node alone; in a cluster the unfenced brokers in turn, from a place the
// topic's name picks, so that leaders spread.
func (b *Broker) placePartition(topic string, p int32) *eventlog.PartitionChanged {
	leader := b.cfg.NodeID
	if b.cfg.Cluster != nil {
		var ids []int32
		b.meta.View(func(s *eventlog.State) {
			for _, br := range liveBrokers(s) {
				if b.cfg.Cluster.Up(br.ID) {
					ids = append(ids, br.ID)
				}
			}
		})
		if len(ids) > 0 {
			h := fnv.New32a()
			h.Write([]byte(topic))
			leader = ids[(int(h.Sum32()%uint32(len(ids)))+int(p))%len(ids)]
		}
	}
	return &eventlog.PartitionChanged{Topic: topic, Partition: p, Replicas: []int32{leader}, ISR: []int32{leader}, Leader: leader}
}

// ClusterIDConfig is the cluster-wide broker config (resource "") that
// holds a cluster's id, so that every node reports the same one.
const ClusterIDConfig = "cluster.id"

// clusterIDOf is the cluster id the metadata holds, or local.
func clusterIDOf(s *eventlog.State, local string) string {
	if id := s.BrokerConfigs[""][ClusterIDConfig]; id != "" {
		return id
	}
	return local
}

// namesWith returns the names whose code is code, sorted.
func namesWith(codes map[string]int16, code int16) []string {
	var out []string
	for name, c := range codes {
		if c == code {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// metaCode is the Kafka error code of a failed metadata append: NOT_CONTROLLER
// (retriable: the client finds the controller and tries there) when this
// node is not the controller or stopped being it before the change
// committed, REQUEST_TIMED_OUT (retriable) when a majority did not hold it
// in time, POLICY_VIOLATION for a change too large for one batch,
// otherwise def. Either retriable answer may be followed by the change
// committing; a client that retries a create may then be told the topic
// exists, as with Kafka.
func (b *Broker) metaCode(err error, def int16) int16 {
	switch {
	case b.cfg.Cluster != nil && b.cfg.Cluster.NotController(err):
		return kerr.NotController.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, eventlog.ErrTooLarge):
		return kerr.PolicyViolation.Code
	}
	return def
}
