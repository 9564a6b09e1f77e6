package kafka

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the broker's Prometheus metrics.
type Metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	forwarded *prometheus.CounterVec
}

// NewMetrics registers the broker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_kafka_requests_total", Help: "Kafka requests served, by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chronik_kafka_request_seconds", Help: "Time to serve a Kafka request, by API (Fetch includes its long-poll wait).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_kafka_connection_errors_total", Help: "Connections closed for a bad request, by reason.",
		}, []string{"reason"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_kafka_forwarded_requests_total",
			Help: "Requests this node passed on to the controller, by API and outcome: relayed (the controller answered) or here (no other controller answered in time: served by this node, which says NOT_CONTROLLER unless it became the controller).",
		}, []string{"api", "outcome"}),
	}
	reg.MustRegister(m.requests, m.latency, m.errors, m.forwarded)
	return m
}

// forward counts a request passed on to the controller.
func (m *Metrics) forward(key int16, relayed bool) {
	if m == nil {
		return
	}
	outcome := "here"
	if relayed {
		outcome = "relayed"
	}
	m.forwarded.WithLabelValues(kmsg.NameForKey(key), outcome).Inc()
}

func (m *Metrics) observe(key int16, start time.Time) {
	if m == nil {
		return
	}
	name := kmsg.NameForKey(key)
	if name == "" {
		name = strconv.Itoa(int(key))
	}
	m.requests.WithLabelValues(name).Inc()
	m.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
}

func (m *Metrics) badRequest(reason string) {
	if m != nil {
		m.errors.WithLabelValues(reason).Inc()
	}
}

// RegisterMetrics exposes the broker's state with reg: its fetch sessions
// and, where it coordinates transactions, the transactional ids by state
// (how many transactions are open, or stuck between decision and
// completion) and completed transactions by outcome.
func (b *Broker) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronik_fetch_sessions", Help: "Fetch sessions cached (KIP-227)."},
			func() float64 { n, _ := b.sessions.stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronik_fetch_session_partitions", Help: "Partitions in the cached fetch sessions."},
			func() float64 { _, n := b.sessions.stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronik_fetch_memory_bytes", Help: "Record bytes fetch responses hold, read and not yet written (--max-fetch-memory-bytes bounds it, but for first batches)."},
			func() float64 { return float64(b.fetchMem.inUse()) }),
	)
	if b.txns != nil {
		reg.MustRegister(txnCollector{b})
	}
}

// RegisterMetrics exposes the request bytes the server holds and how often
// a connection waited for room (--max-queued-request-bytes).
func (s *Server) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronik_kafka_queued_request_bytes", Help: "Bytes of request frames read, or being read, and not yet served."},
			func() float64 { return float64(s.queuedBytes.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chronik_kafka_queued_request_waits_total", Help: "Request frames that waited for room under --max-queued-request-bytes."},
			func() float64 { return float64(s.queuedWaits.Load()) }),
	)
}
