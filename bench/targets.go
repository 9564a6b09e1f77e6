package bench

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka"
	"github.com/chronik-stream/chronik/segment"
)

// Target is a running broker to drive.
type Target struct {
	Name  string
	Addr  string
	close func()
}

// Close stops the broker.
func (t *Target) Close() { t.close() }

// StartChronik runs a chronik broker in this process on a loopback port,
// storing in dir with the given WAL profile: what `chronik start` runs,
// syncing to disk before every acknowledgement.
func StartChronik(dir string, profile segment.Profile) (*Target, error) {
	store, err := segment.OpenStore(dir, kafka.WithSpares(segment.StoreOptions{Profile: profile}))
	if err != nil {
		return nil, err
	}
	meta, err := eventlog.Open(store, eventlog.Options{})
	if err != nil {
		store.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		meta.Close()
		store.Close()
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	log := slog.New(slog.DiscardHandler)
	b, err := kafka.NewBroker(kafka.Config{NodeID: 1, Host: host, Port: int32(port), ClusterID: "bench", AutoCreateTopics: true, DefaultPartitions: 1}, store, meta, log)
	if err != nil {
		ln.Close()
		meta.Close()
		store.Close()
		return nil, err
	}
	srv := kafka.NewServer(b, kafka.ServerOptions{}, log, nil)
	go srv.Serve(ln)
	return &Target{Name: "chronik", Addr: ln.Addr().String(), close: func() {
		srv.Close()
		meta.Close()
		store.Close()
	}}, nil
}

// StartKfake runs franz-go's in-memory fake cluster (one broker); with
// blackhole, produced records are acknowledged and dropped: the protocol
// alone, the ceiling of any broker.
func StartKfake(blackhole bool) (*Target, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}
	name := "kfake"
	if blackhole {
		opts = append(opts, kfake.BlackholeProduce())
		name = "kfake-blackhole"
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	return &Target{Name: name, Addr: c.ListenAddrs()[0], close: c.Close}, nil
}
