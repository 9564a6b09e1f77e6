package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment"
)

func startCommand() *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "run a broker node",
		Description: "Runs a chronik node, storing in --data-dir and serving Kafka clients on --kafka-addr:\n" +
			"alone (its own controller), or with --voters (or --bootstrap-expect) as one node of a\n" +
			"cluster. No config file is needed: every flag has a default and an environment\n" +
			"variable. SIGTERM, SIGINT or SIGHUP (the terminal closed) stops it cleanly.\n\n" +
			"Examples:\n" +
			"   chronik start\n" +
			"   chronik start --data-dir /var/lib/chronik --kafka-addr 0.0.0.0:9092 --advertised-addr kafka1:9092\n" +
			"   CHRONIK_WAL_PROFILE=ultra chronik start\n" +
			"   chronik start --node-id 2 --voters 1,2,3 --replication-addr 10.0.0.2:9291 --gossip-addr 10.0.0.2:7946 --join 10.0.0.1:7946",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "data", EnvVars: []string{"CHRONIK_DATA_DIR"}, Usage: "directory for partitions and the metadata log"},
			&cli.IntFlag{Name: "node-id", Value: 1, EnvVars: []string{"CHRONIK_NODE_ID"}, Usage: "this broker's id"},
			&cli.StringFlag{Name: "kafka-addr", Value: "127.0.0.1:9092", EnvVars: []string{"CHRONIK_KAFKA_ADDR"}, Usage: "address the Kafka protocol listens on"},
			&cli.StringFlag{Name: "advertised-addr", EnvVars: []string{"CHRONIK_ADVERTISED_ADDR"}, Usage: "address clients are told to connect to (default: --kafka-addr)"},
			&cli.StringFlag{Name: "http-addr", EnvVars: []string{"CHRONIK_HTTP_ADDR"}, Usage: "address for Prometheus /metrics and /healthz (default: off)"},
			&cli.StringFlag{Name: "wal-profile", Value: "low", EnvVars: []string{"CHRONIK_WAL_PROFILE"}, Usage: "group-commit bounds: low, medium, high or ultra"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"CHRONIK_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "auto-create-topics", Value: true, EnvVars: []string{"CHRONIK_AUTO_CREATE_TOPICS"}, Usage: "create a topic a client asks metadata for when it does not exist"},
			&cli.IntFlag{Name: "default-partitions", Value: 1, EnvVars: []string{"CHRONIK_DEFAULT_PARTITIONS"}, Usage: "partitions of auto-created topics"},
			&cli.DurationFlag{Name: "group-initial-rebalance-delay", Value: 3 * time.Second, EnvVars: []string{"CHRONIK_GROUP_INITIAL_REBALANCE_DELAY"}, Usage: "how long the first join of an empty consumer group waits for more members (Kafka's group.initial.rebalance.delay.ms)"},
			&cli.DurationFlag{Name: "offsets-retention", Value: group.DefaultOffsetsRetention, EnvVars: []string{"CHRONIK_OFFSETS_RETENTION"}, Usage: "how long committed offsets nothing uses are kept: a consumer group's once it is empty, those of topics a group no longer consumes (Kafka's offsets.retention.minutes); checked every 10 minutes, or a tenth of the shortest of the three expirations when that is shorter"},
			&cli.DurationFlag{Name: "producer-id-expiration", Value: kafka.DefaultProducerIDExpiration, EnvVars: []string{"CHRONIK_PRODUCER_ID_EXPIRATION"}, Usage: "how long an idempotent producer's sequence state is kept after its last write (Kafka's producer.id.expiration.ms); checked every 10 minutes, or a tenth of the shortest of the three expirations when that is shorter"},
			&cli.DurationFlag{Name: "transaction-max-timeout", Value: txn.DefaultMaxTimeout, EnvVars: []string{"CHRONIK_TRANSACTION_MAX_TIMEOUT"}, Usage: "the longest transaction timeout a producer may ask for (Kafka's transaction.max.timeout.ms; Flink's exactly-once sink asks for 1h by default); at most --producer-id-expiration"},
			&cli.DurationFlag{Name: "transactional-id-expiration", Value: txn.DefaultIDExpiration, EnvVars: []string{"CHRONIK_TRANSACTIONAL_ID_EXPIRATION"}, Usage: "how long a transactional id with no open transaction is kept after its last transaction (Kafka's transactional.id.expiration.ms); checked every 10 minutes, or a tenth of the shortest of the three expirations when that is shorter"},
			&cli.IntFlag{Name: "max-request-bytes", Value: kafka.DefaultMaxRequestBytes, EnvVars: []string{"CHRONIK_MAX_REQUEST_BYTES"}, Usage: "largest request accepted; a larger frame closes the connection"},
			&cli.Int64Flag{Name: "max-fetch-memory-bytes", Value: kafka.DefaultFetchMemory, EnvVars: []string{"CHRONIK_MAX_FETCH_MEMORY_BYTES"}, Usage: "the most bytes of records all fetch responses hold at once, read and not yet sent (at least 1 MiB); beyond it a fetch waits as if there were no data, except that a partition's first batch always goes to a response that has nothing else"},
			&cli.Int64Flag{Name: "connections-max-idle-ms", Value: kafka.DefaultConnectionsMaxIdle.Milliseconds(), EnvVars: []string{"CHRONIK_CONNECTIONS_MAX_IDLE_MS"}, Usage: "close a client connection that sent no request for this long and waits for no answer (Kafka's connections.max.idle.ms; clients reconnect when they need to); 0 never closes one"},
			&cli.Int64Flag{Name: "max-queued-request-bytes", Value: kafka.DefaultMaxQueuedRequestBytes, EnvVars: []string{"CHRONIK_MAX_QUEUED_REQUEST_BYTES"}, Usage: "the most bytes of requests held at once over all connections, read and not yet served (Kafka's queued.max.request.bytes); a connection whose next request does not fit waits; at least --max-request-bytes"},
		}, clusterFlags()...),
		Action: runStart,
	}
}

func runStart(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("--log-level %q: use debug, info, warn or error", c.String("log-level")), 2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	profile, err := segment.ParseProfile(c.String("wal-profile"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	nodeID := c.Int("node-id")
	if nodeID < 0 || nodeID > 1<<31-1 {
		return cli.Exit("--node-id must be 0 or more", 2)
	}
	if c.Duration("group-initial-rebalance-delay") < 0 {
		return cli.Exit("--group-initial-rebalance-delay must not be negative (0s: no delay)", 2)
	}
	for _, name := range []string{"offsets-retention", "producer-id-expiration", "transactional-id-expiration"} {
		if c.Duration(name) < time.Minute {
			return cli.Exit(fmt.Sprintf("--%s must be at least 1m (it is %v)", name, c.Duration(name)), 2)
		}
	}
	if d := c.Duration("transaction-max-timeout"); d < time.Second || d > c.Duration("producer-id-expiration") {
		return cli.Exit(fmt.Sprintf("--transaction-max-timeout must be between 1s and --producer-id-expiration (%v); it is %v", c.Duration("producer-id-expiration"), d), 2)
	}
	if n := c.Int("default-partitions"); n < 1 || n > 10_000 {
		return cli.Exit("--default-partitions must be between 1 and 10000 (the most one request may create)", 2)
	}
	maxReq := c.Int("max-request-bytes")
	if maxReq < 1024 || maxReq > 1<<30 {
		return cli.Exit("--max-request-bytes must be between 1024 and 1073741824", 2)
	}
	if m := c.Int64("max-fetch-memory-bytes"); m < 1<<20 {
		return cli.Exit(fmt.Sprintf("--max-fetch-memory-bytes (%d) must be at least 1048576 (1 MiB)", m), 2)
	}
	if q := c.Int64("max-queued-request-bytes"); q < int64(maxReq) {
		return cli.Exit(fmt.Sprintf("--max-queued-request-bytes (%d) must be at least --max-request-bytes (%d): a request of the largest size must fit", q, maxReq), 2)
	}
	if ms := c.Int64("connections-max-idle-ms"); ms < 0 || ms > 7*24*3600*1000 {
		return cli.Exit(fmt.Sprintf("--connections-max-idle-ms %d must be between 0 (never close an idle connection) and 604800000 (a week)", ms), 2)
	}
	for _, name := range []string{"kafka-addr", "http-addr"} {
		if v := c.String(name); v != "" {
			if _, _, err := splitAddr(v); err != nil {
				return cli.Exit(fmt.Sprintf("--%s %q: %v", name, v, err), 2)
			}
		}
	}
	advertised := c.String("advertised-addr")
	if advertised == "" {
		advertised = c.String("kafka-addr")
	}
	host, port, err := splitAddr(advertised)
	if err != nil || !reachable(host, port) {
		return cli.Exit(fmt.Sprintf("advertised address %q must be host:port that clients can reach (set --advertised-addr when listening on all interfaces)", advertised), 2)
	}

	var voters []int32
	if v := c.String("voters"); v != "" {
		if voters, err = parseVoters(v, int32(nodeID)); err != nil {
			return cli.Exit(err.Error(), 2)
		}
		if err := checkNonVoter(c, voters, int32(nodeID)); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	expect := c.Int("bootstrap-expect")
	if expect < 0 || expect > 0 && voters != nil {
		return cli.Exit("--bootstrap-expect is a positive count of nodes, and replaces --voters: give one of them", 2)
	}
	clustered := voters != nil || expect > 0
	if clustered && nodeID == 0 {
		return cli.Exit("--node-id 0 cannot be a node of a cluster: give each node a positive --node-id (1, 2, 3, ...)", 2)
	}
	if acks := c.String("metadata-acks"); acks != "quorum" && acks != "leader" {
		return cli.Exit(fmt.Sprintf("--metadata-acks %q: use quorum or leader", acks), 2)
	}
	if clustered {
		if err := checkClusterFlags(c); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}

	start := time.Now()
	dataDir := c.String("data-dir")
	store, err := segment.OpenStore(dataDir, kafka.WithSpares(segment.StoreOptions{Profile: profile, Logger: log}))
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	defer store.Close()
	clusterID, err := loadClusterID(segment.OSFS{}, dataDir)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if err := keepNodeID(segment.OSFS{}, dataDir, int32(nodeID)); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	metaOpts := eventlog.Options{Logger: log, Replicated: clustered}
	if clustered && c.Bool("disable-metadata-wal") {
		// The fallback path writes committed entries as they come; Raft
		// replays its log over them at start: the metadata log's snapshots
		// are taken when Raft's log is compacted, and its segments deleted
		// only once Raft no longer replays them.
		metaOpts.Replicated, metaOpts.SnapshotBytes, metaOpts.KeepSegments = false, -1, true
	}
	meta, err := eventlog.Open(store, metaOpts)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	defer meta.Close()
	var member *clusterMember
	var kcluster kafka.Cluster
	mode := "single node: this node is the controller, events fsync'd before answers"
	if clustered {
		if member, err = startClusterNode(c, int32(nodeID), voters, meta, advertised, clusterID, log); err != nil {
			return err
		}
		defer member.node.Stop()
		kcluster = member
		voters = member.node.Voters()
		path := fmt.Sprintf("fast path, the Raft-elected controller ships the metadata log, %s acks", c.String("metadata-acks"))
		if c.Bool("disable-metadata-wal") {
			path = "Raft fallback path, metadata changes travel as Raft entries"
		}
		role := ""
		if !slices.Contains(voters, int32(nodeID)) {
			role = " (this node is not one: a broker that takes the metadata)"
		}
		mode = fmt.Sprintf("cluster, voters %v%s: %s", voters, role, path)
	}
	b, err := kafka.NewBroker(kafka.Config{
		NodeID: int32(nodeID), Host: host, Port: int32(port), ClusterID: clusterID, Cluster: kcluster,
		AutoCreateTopics: c.Bool("auto-create-topics"), DefaultPartitions: int32(c.Int("default-partitions")),
		ProducerIDExpiration:      c.Duration("producer-id-expiration"),
		TransactionalIDExpiration: c.Duration("transactional-id-expiration"),
		TransactionMaxTimeout:     c.Duration("transaction-max-timeout"),
		FetchMemory:               c.Int64("max-fetch-memory-bytes"),
		Groups:                    group.Config{InitialRebalanceDelay: c.Duration("group-initial-rebalance-delay"), OffsetsRetention: c.Duration("offsets-retention")},
	}, store, meta, log)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	var recovered any
	if held, _ := meta.End(); metaOpts.Replicated && meta.Offset() < held {
		// The partitions it leads are known once the metadata it holds
		// commits: they are opened (and recovered) then.
		recovered = "once the metadata this node holds is committed"
		stop, done := make(chan struct{}), make(chan struct{})
		defer func() { close(stop); <-done }()
		go func() {
			defer close(done)
			n := b.OpenPartitionsOnceApplied(held, stop)
			select {
			case <-stop:
			default:
				log.Info("partitions recovered, once the metadata this node held was committed", "partitions", n,
					"metadata_offset", meta.Offset(), "since_start", time.Since(start).Round(time.Millisecond))
			}
		}()
	} else if recovered, err = b.OpenPartitions(); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	ln, err := net.Listen("tcp", c.String("kafka-addr"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("cannot listen on %s: %v (is another broker running there? use --kafka-addr)", c.String("kafka-addr"), err), 1)
	}
	reg := prometheus.NewRegistry()
	idle := time.Duration(c.Int64("connections-max-idle-ms")) * time.Millisecond
	if idle == 0 {
		idle = -1 // never
	}
	srv := kafka.NewServer(b, kafka.ServerOptions{MaxRequestBytes: int32(maxReq), MaxQueuedRequestBytes: c.Int64("max-queued-request-bytes"), ConnectionsMaxIdle: idle}, log, kafka.NewMetrics(reg))
	if addr := c.String("http-addr"); addr != "" {
		hln, err := net.Listen("tcp", addr)
		if err != nil {
			return cli.Exit(fmt.Sprintf("cannot listen on --http-addr %s: %v", addr, err), 1)
		}
		registerStoreMetrics(reg, store, meta)
		if member != nil {
			reg.MustRegister(clusterCollector{node: member.node, meta: meta})
		}
		b.RegisterMetrics(reg)
		srv.RegisterMetrics(reg)
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(hln)
		defer hs.Close()
	}
	shownID := clusterID
	if member != nil {
		if shownID = member.node.ClusterID(); shownID == "" {
			shownID = "none yet: this node holds no metadata (it takes its cluster's)"
		}
	}
	log.Info("chronik started", "node_id", nodeID, "kafka_addr", ln.Addr().String(), "advertised_addr", advertised,
		"cluster_id", shownID, "wal_profile", profile.Name, "metadata", mode,
		"metadata_path", meta.Dir(), "metadata_offset", meta.Offset(), "partitions_recovered", recovered, "took", time.Since(start).Round(time.Millisecond))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var fatal chan error // nil (never ready) on a single node
	if member != nil {
		fatal = member.fatal
	}
	select {
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
	case err := <-served:
		if err != nil {
			return cli.Exit(fmt.Sprintf("kafka listener failed: %v", err), 1)
		}
	case err := <-fatal:
		srv.Close()
		return cli.Exit(fmt.Sprintf("stopping: the metadata log failed (%v); this node left the quorum and another is the controller: check the disk, then restart it", err), 1)
	}
	srv.Close()
	log.Info("stopped: in-flight requests finished, logs synced")
	return nil
}

// registerStoreMetrics exposes the storage engine's and the metadata log's
// counters, read when scraped.
func registerStoreMetrics(reg *prometheus.Registry, store *segment.Store, meta *eventlog.Log) {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chronik_wal_syncs_total", Help: "fdatasync calls made by the group committer."},
			func() float64 { return float64(store.Stats().Syncs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chronik_wal_writes_total", Help: "Appends made durable by the group committer."},
			func() float64 { return float64(store.Stats().Writes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chronik_wal_failed_appends_total", Help: "Appends that could not allocate or write (a full disk, an I/O error): each was answered with the error (KAFKA_STORAGE_ERROR to a producer)."},
			func() float64 { return float64(store.Stats().FailedAppends) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chronik_wal_failed_syncs_total", Help: "fdatasync calls that failed: the writes they covered were dropped and answered with the error."},
			func() float64 { return float64(store.Stats().FailedSyncs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronik_mapped_segments", Help: "Sealed segments mapped now."},
			func() float64 { return float64(store.Stats().MappedSegs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chronik_metadata_offset", Help: "Offset of the next metadata event."},
			func() float64 { return float64(meta.Offset()) }),
	)
}

// parseClusterID reads a cluster-id file: 1 to 64 letters, digits, '-'
// or '_' (chronik writes 32 hex digits; Kafka's ids are 22 of base64url),
// and a newline.
func parseClusterID(b []byte) (string, bool) {
	id := strings.TrimSpace(string(b))
	if len(id) == 0 || len(id) > 64 {
		return "", false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return id, true
}

// loadClusterID reads the cluster id kept in the data directory, creating
// it on the first start.
func loadClusterID(fsys segment.FS, dir string) (string, error) {
	path := filepath.Join(dir, "cluster-id")
	b, err := segment.ReadFile(fsys, path, 4096)
	if err == nil {
		id, ok := parseClusterID(b)
		if !ok {
			return "", fmt.Errorf("%s is damaged (%q is not a cluster id): restore it from a copy, or from the cluster id a node of the cluster logs at its start", path, b)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	if err := keepClusterID(fsys, dir, id); err != nil {
		return "", err
	}
	return id, nil
}

// keepClusterID writes id to the data directory's cluster-id file: whole
// or not at all, and synced (a power loss right after the first start
// must not leave an empty file the next start refuses).
func keepClusterID(fsys segment.FS, dir, id string) error {
	if _, ok := parseClusterID([]byte(id)); !ok {
		return fmt.Errorf("%q is not a cluster id", id)
	}
	path := filepath.Join(dir, "cluster-id")
	if err := segment.ReplaceFile(fsys, path, path+".tmp", []byte(id+"\n")); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
