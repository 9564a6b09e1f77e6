package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/chronik-stream/chronik/bench"
	"github.com/chronik-stream/chronik/segment"
)

func benchCommand() *cli.Command {
	target := []cli.Flag{
		&cli.StringFlag{Name: "bootstrap", Usage: "drive the broker at `HOST:PORT` instead of starting one in this process"},
		&cli.StringFlag{Name: "target", Value: "chronik", Usage: "broker to start in this process: chronik, kfake (franz-go's in-memory fake), kfake-blackhole (acknowledges and drops produced records) or, for create-topics, sync-floor (a bare server that syncs a 512 B write to --data-dir before each answer)"},
		&cli.StringFlag{Name: "data-dir", Usage: "data directory of the in-process chronik (default: a temporary directory, removed after)"},
		&cli.StringFlag{Name: "wal-profile", Value: "low", Usage: "WAL profile of the in-process chronik: low, medium, high or ultra"},
	}
	records := []cli.Flag{
		&cli.IntFlag{Name: "records", Value: 1_000_000, Usage: "records to send"},
		&cli.IntFlag{Name: "record-size", Value: 100, Usage: "bytes per record value"},
		&cli.StringFlag{Name: "topic", Value: "chronik-bench", Usage: "topic to use (created if missing)"},
	}
	with := func(groups ...[]cli.Flag) []cli.Flag {
		var out []cli.Flag
		for _, g := range groups {
			out = append(out, g...)
		}
		return out
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure a broker with a load generator (kafka-producer-perf-test style)",
		Description: "Each workload drives a broker with franz-go, prints its progress every second on\n" +
			"stderr and a summary on stdout. By default it starts chronik in this process on\n" +
			"a temporary directory; --target kfake runs the same load against franz-go's\n" +
			"in-memory broker for comparison, --bootstrap against any running broker.",
		Subcommands: []*cli.Command{
			{
				Name: "produce", Usage: "one batching producer, acks=all, as fast as acknowledged",
				Flags: with(target, records, []cli.Flag{&cli.IntFlag{Name: "partitions", Value: 4, Usage: "partitions of the topic"},
					&cli.BoolFlag{Name: "pre-encoded", Usage: "send one batch of up to 1 MiB per partition, encoded once, again and again on one connection (5 requests in flight): the broker's storage path without a client library's work per record"}}),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					if c.Bool("pre-encoded") {
						return bench.ProduceBatches(ctx, addr, c.String("topic"), int32(c.Int("partitions")), c.Int("records"), c.Int("record-size"), p)
					}
					return bench.Produce(ctx, addr, c.String("topic"), int32(c.Int("partitions")), c.Int("records"), c.Int("record-size"), p)
				}),
			},
			{
				Name: "consume", Usage: "produce --records, then time reading them back from the start",
				Flags: with(target, records, []cli.Flag{&cli.IntFlag{Name: "partitions", Value: 4, Usage: "partitions of the topic"}}),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					fmt.Fprintf(os.Stderr, "producing %d records to read back\n", c.Int("records"))
					if _, err := bench.Produce(ctx, addr, c.String("topic"), int32(c.Int("partitions")), c.Int("records"), c.Int("record-size"), nil); err != nil {
						return nil, err
					}
					return bench.Consume(ctx, addr, c.String("topic"), c.Int("records"), p)
				}),
			},
			{
				Name: "producers", Usage: "many producers, each sending one record at a time and waiting for its ack",
				Flags: with(target, records, []cli.Flag{&cli.IntFlag{Name: "producers", Value: 128, Usage: "concurrent producers (one client each)"}}),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					n := c.Int("producers")
					return bench.ConcurrentProducers(ctx, addr, c.String("topic"), n, max(c.Int("records")/max(n, 1), 1), c.Int("record-size"), p)
				}),
			},
			{
				Name: "create-topics", Usage: "create topics one request after another",
				Flags: with(target, []cli.Flag{
					&cli.IntFlag{Name: "count", Value: 10_000, Usage: "topics to create"},
					&cli.IntFlag{Name: "per-request", Value: 1, Usage: "topics per CreateTopics request"},
					&cli.StringFlag{Name: "prefix", Value: "bench-topic", Usage: "topic names are PREFIX-N"},
				}),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					return bench.CreateTopics(ctx, addr, c.String("prefix"), c.Int("count"), c.Int("per-request"), p)
				}),
			},
			{
				Name: "first-message", Usage: "create a topic and produce its first message, one after another",
				Flags: with(target, []cli.Flag{
					&cli.IntFlag{Name: "count", Value: 1_000, Usage: "topics to create"},
					&cli.StringFlag{Name: "prefix", Value: "bench-first", Usage: "topic names are PREFIX-N"},
				}),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					return bench.FirstMessages(ctx, addr, c.String("prefix"), c.Int("count"), p)
				}),
			},
			{
				Name: "single-message", Usage: "produce one message at a time, each waiting for its ack",
				Flags: with(target, records),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					return bench.SingleMessages(ctx, addr, c.String("topic"), c.Int("records"), c.Int("record-size"), p)
				}),
			},
			{
				Name: "transactions", Usage: "one transactional producer: a record to each partition, then a commit, one transaction after another",
				Flags: with(target, []cli.Flag{
					&cli.IntFlag{Name: "count", Value: 10_000, Usage: "transactions to run"},
					&cli.IntFlag{Name: "partitions", Value: 1, Usage: "partitions of the topic, each written in every transaction"},
					&cli.IntFlag{Name: "record-size", Value: 100, Usage: "bytes per record value"},
					&cli.StringFlag{Name: "topic", Value: "chronik-bench-txn", Usage: "topic to use (created if missing)"},
				}),
				Action: benchAction(func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error) {
					return bench.Transactions(ctx, addr, c.String("topic"), int32(c.Int("partitions")), c.Int("count"), c.Int("record-size"), p)
				}),
			},
			{
				Name: "disk", Usage: "the baseline: sequential writes + fdatasync into --data-dir",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Value: ".", Usage: "directory on the disk to measure"},
					&cli.IntFlag{Name: "total-bytes", Value: 1 << 30, Usage: "bytes to write"},
					&cli.IntFlag{Name: "chunk-bytes", Value: 1 << 20, Usage: "bytes per write + fdatasync"},
					&cli.IntFlag{Name: "files", Value: 1, Usage: "files written side by side, a chunk to each, then synced in parallel (a broker's partitions)"},
					&cli.BoolFlag{Name: "prezeroed", Usage: "write into a file zeroed beforehand, as chronik's segments are"},
				},
				Action: func(c *cli.Context) error {
					r, err := bench.DiskWrite(c.String("data-dir"), c.Int("total-bytes"), c.Int("chunk-bytes"), c.Int("files"), c.Bool("prezeroed"))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					fmt.Println(r)
					return nil
				},
			},
		},
	}
}

type workload func(ctx context.Context, c *cli.Context, addr string, p *bench.Progress) (*bench.Result, error)

// benchAction starts the target, runs the workload with a progress line
// every second, and prints the summary.
func benchAction(w workload) cli.ActionFunc {
	return func(c *cli.Context) error {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		addr := c.String("bootstrap")
		name := addr // a broker of its own: named by its address
		if addr == "" {
			t, cleanup, err := startTarget(c)
			if err != nil {
				return err
			}
			defer cleanup()
			addr, name = t.Addr, t.Name
		}
		if name == addr {
			fmt.Fprintf(os.Stderr, "driving the broker at %s\n", addr)
		} else {
			fmt.Fprintf(os.Stderr, "driving %s at %s\n", name, addr)
		}
		p := &bench.Progress{}
		done := make(chan struct{})
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			var lastOps, lastBytes int64
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					ops, bytes := p.Load()
					fmt.Fprintf(os.Stderr, "%d ops, %d ops/sec (%.2f MB/sec)\n", ops, ops-lastOps, float64(bytes-lastBytes)/1e6)
					lastOps, lastBytes = ops, bytes
				}
			}
		}()
		r, err := w(ctx, c, addr, p)
		close(done)
		if err != nil {
			return cli.Exit(fmt.Sprintf("bench against %s: %v", name, err), 1)
		}
		fmt.Printf("%s against %s\n", r, name)
		return nil
	}
}

// startTarget starts the in-process broker; cleanup stops it and removes
// its temporary directory.
func startTarget(c *cli.Context) (t *bench.Target, cleanup func(), err error) {
	target := c.String("target")
	switch target {
	case "chronik", "sync-floor":
		if target == "sync-floor" && c.Command.Name != "create-topics" {
			return nil, nil, cli.Exit("--target sync-floor serves create-topics only: it is the floor of a create synced before its answer", 2)
		}
		profile, err := segment.ParseProfile(c.String("wal-profile"))
		if err != nil {
			return nil, nil, cli.Exit(err.Error(), 2)
		}
		dir, tmp := c.String("data-dir"), ""
		if dir == "" {
			if tmp, err = os.MkdirTemp("", "chronik-bench-*"); err != nil {
				return nil, nil, cli.Exit(err.Error(), 1)
			}
			dir = tmp
		}
		if target == "chronik" {
			t, err = bench.StartChronik(dir, profile)
		} else {
			t, err = bench.StartSyncFloor(dir)
		}
		if err != nil {
			if tmp != "" {
				os.RemoveAll(tmp)
			}
			return nil, nil, cli.Exit(fmt.Sprintf("cannot start %s on %s: %v", target, dir, err), 1)
		}
		return t, func() {
			t.Close()
			if tmp != "" {
				os.RemoveAll(tmp)
			}
		}, nil
	case "kfake", "kfake-blackhole":
		t, err := bench.StartKfake(target == "kfake-blackhole")
		if err != nil {
			return nil, nil, cli.Exit(err.Error(), 1)
		}
		return t, t.Close, nil
	}
	return nil, nil, cli.Exit(fmt.Sprintf("--target %q is not one of chronik, kfake, kfake-blackhole, sync-floor", target), 2)
}
