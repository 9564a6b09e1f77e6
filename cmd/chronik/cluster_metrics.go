package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronik-stream/chronik/cluster"
	"github.com/chronik-stream/chronik/eventlog"
)

// clusterCollector exposes a cluster node's view of the cluster, read when
// scraped.
type clusterCollector struct {
	node *cluster.Node
	meta *eventlog.Log
}

var (
	controllerDesc   = prometheus.NewDesc("chronik_cluster_controller", "1 if this node is the controller, else 0.", nil, nil)
	controllerIDDesc = prometheus.NewDesc("chronik_cluster_controller_id", "The controller's node id as this node knows it; 0 if it knows none.", nil, nil)
	voterDesc        = prometheus.NewDesc("chronik_cluster_voter", "1 if this node is one of the voters, 0 for a broker that is not.", nil, nil)
	termDesc         = prometheus.NewDesc("chronik_raft_term", "Raft's current term on this node (the controller's epoch).", nil, nil)
	membersDesc      = prometheus.NewDesc("chronik_cluster_members", "Nodes gossip holds alive, this one included.", nil, nil)
	brokersDesc      = prometheus.NewDesc("chronik_cluster_brokers", "Registered brokers in the committed metadata, by state.", []string{"state"}, nil)
	committedDesc    = prometheus.NewDesc("chronik_metadata_committed_offset", "The metadata log's commit point as this node knows it.", nil, nil)
	endDesc          = prometheus.NewDesc("chronik_metadata_end_offset", "The end of this node's metadata log, committed or not.", nil, nil)
	lagDesc          = prometheus.NewDesc("chronik_metadata_follower_lag", "On the controller: its metadata log end minus what each follower has acknowledged.", []string{"follower"}, nil)
)

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{controllerDesc, controllerIDDesc, voterDesc, termDesc, membersDesc, brokersDesc, committedDesc, endDesc, lagDesc} {
		ch <- d
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.node.Stats()
	end, _ := c.meta.End()
	var unfenced, fenced int
	c.meta.View(func(st *eventlog.State) {
		for _, b := range st.Brokers {
			if b.Fenced {
				fenced++
			} else {
				unfenced++
			}
		}
	})
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(controllerDesc, flag(s.IsController))
	gauge(controllerIDDesc, float64(s.Controller))
	gauge(voterDesc, flag(s.Voter))
	gauge(termDesc, float64(s.Term))
	gauge(membersDesc, float64(s.Members))
	gauge(brokersDesc, float64(unfenced), "unfenced")
	gauge(brokersDesc, float64(fenced), "fenced")
	gauge(committedDesc, float64(c.meta.Committed()))
	gauge(endDesc, float64(end))
	for id, f := range s.Followers {
		if f.End < 0 {
			continue // the controller no longer knows it (behind its Raft snapshot)
		}
		gauge(lagDesc, float64(max(end-f.End, 0)), strconv.Itoa(int(id)))
	}
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
