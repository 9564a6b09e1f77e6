package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
	// Controller is the controller this node knows of (0 for none), and
	// whether it is this node.
	Controller() (int32, bool)
	// NotController reports whether err says this node is not the
	// controller.
	NotController(err error) bool
	// Up reports whether a broker is reachable now, as gossip sees it
	// (before the controller fences one that failed).
	Up(id int32) bool
}

// appendMeta appends metadata events: directly on a single node, through
// the controller in a cluster.
func (b *Broker) appendMeta(events ...eventlog.Event) (int64, error) {
	if b.cfg.Cluster != nil {
		return b.cfg.Cluster.Append(events...)
	}
	return b.meta.Append(events...)
}

// appendEach appends groups of events in one batch or, if one group does
// not apply (another request changed the same thing meanwhile), each on
// its own, so that only that one fails: the error of each group.
func (b *Broker) appendEach(groups [][]eventlog.Event) []error {
	errs := make([]error, len(groups))
	_, err := b.appendMeta(slices.Concat(groups...)...)
	for i, g := range groups {
		if errors.Is(err, eventlog.ErrRefused) && len(groups) > 1 {
			_, errs[i] = b.appendMeta(g...)
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
}

// errNoController: there is no controller to forward to yet; clients get a
// retriable error.
var errNoController = errors.New("kafka: no controller elected yet")

// forwardWait bounds how long a forwarded request waits for a controller
// to be reachable (one is being elected, or the old one just died), as
// Kafka's forwarding brokers hold requests until a controller answers.
const forwardWait = 10 * time.Second

// forward sends req to the controller and returns its response, retrying
// while no controller is reachable, up to forwardWait. errNoController
// means this node became the controller meanwhile (or none was found in
// time): the caller serves the request itself.
func (b *Broker) forward(req kmsg.Request) (kmsg.Response, error) {
	deadline := time.Now().Add(forwardWait)
	for {
		resp, err := b.forwardOnce(req)
		if err == nil || time.Now().After(deadline) {
			return resp, err
		}
		if _, self := b.cfg.Cluster.Controller(); self {
			return nil, errNoController
		}
		select {
		case <-b.closing:
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// forwardOnce sends req to the controller this node knows of.
func (b *Broker) forwardOnce(req kmsg.Request) (kmsg.Response, error) {
	id, self := b.cfg.Cluster.Controller()
	if id == 0 || self {
		return nil, errNoController
	}
	resp, err := b.peerRequest(id, req)
	if err != nil {
		return nil, fmt.Errorf("kafka: forward to the controller: %w", err)
	}
	return resp, nil
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

// peers is a client for requests to the other brokers of a cluster,
// addressed by broker id: forwarded metadata requests, transaction
// markers, transaction checks.
type peers struct {
	mu sync.Mutex
	cl *kgo.Client
}

// peerRequest sends req to broker id and returns its answer.
func (b *Broker) peerRequest(id int32, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), forwardWait)
	defer cancel()
	b.peers.mu.Lock()
	if b.peers.cl == nil {
		// Seeded with this node, it learns the others' addresses from the
		// metadata, and then addresses each by its id.
		cl, err := kgo.NewClient(kgo.SeedBrokers(net.JoinHostPort(b.cfg.Host, strconv.Itoa(int(b.cfg.Port)))), kgo.ClientID("chronik-peer"))
		if err == nil {
			if _, err = cl.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
				cl.Close()
			}
		}
		if err != nil {
			b.peers.mu.Unlock()
			return nil, fmt.Errorf("kafka: learn the brokers: %w", err)
		}
		b.peers.cl = cl
	}
	cl := b.peers.cl
	b.peers.mu.Unlock()
	resp, err := cl.Broker(int(id)).Request(ctx, req)
	if err != nil {
		// A broker that joined after the client learned the others: look
		// again, once.
		if _, merr := cl.Request(ctx, kmsg.NewPtrMetadataRequest()); merr == nil {
			resp, err = cl.Broker(int(id)).Request(ctx, req)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: request to broker %d: %w", id, err)
	}
	return resp, nil
}

func (b *Broker) closePeers() {
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	if b.peers.cl != nil {
		b.peers.cl.Close()
		b.peers.cl = nil
	}
}
