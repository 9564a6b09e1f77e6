package kafka

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronik-stream/chronik/kafka/txn"
)

// txnCollector exposes the transaction coordinator's state (RegisterMetrics).
type txnCollector struct{ b *Broker }

var (
	txnIDsDesc = prometheus.NewDesc("chronik_transactional_ids", "Transactional ids by the state of their last transaction.", []string{"state"}, nil)
	txnEndDesc = prometheus.NewDesc("chronik_transactions_ended_total", "Transactions completed since the start, by outcome.", []string{"outcome"}, nil)
)

func (txnCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- txnIDsDesc
	ch <- txnEndDesc
}

func (c txnCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	for s := txn.Empty; s <= txn.CompleteAbort; s++ {
		counts[s.String()] = 0
	}
	for _, in := range c.b.txns.List() {
		counts[in.State.String()]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(txnIDsDesc, prometheus.GaugeValue, float64(n), state)
	}
	committed, aborted, byCoordinator := c.b.txns.Ended()
	ch <- prometheus.MustNewConstMetric(txnEndDesc, prometheus.CounterValue, float64(committed), "commit")
	ch <- prometheus.MustNewConstMetric(txnEndDesc, prometheus.CounterValue, float64(aborted), "abort")
	ch <- prometheus.MustNewConstMetric(txnEndDesc, prometheus.CounterValue, float64(byCoordinator), "abort_by_coordinator")
}
