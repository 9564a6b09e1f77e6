package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/cluster"
	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/kafka/group"
	"github.com/chronik-stream/chronik/kafka/txn"
	"github.com/chronik-stream/chronik/segment"
)

func logCommand() *cli.Command {
	return &cli.Command{
		Name:  "log",
		Usage: "inspect logs on disk, without a running server",
		Subcommands: []*cli.Command{
			logDumpCommand(),
			logStateCommand(),
		},
	}
}

func logDumpCommand() *cli.Command {
	return &cli.Command{
		Name:      "dump",
		Usage:     "print the record batches of a partition, or the events of the metadata log",
		ArgsUsage: "PATH",
		Description: "PATH is a partition directory (<data-dir>/<topic>-<partition>) or one segment\n" +
			"file (NNNNNNNNNNNNNNNNNNNN.log). Each batch prints as one line: offsets, position,\n" +
			"leader epoch, record count, compression codec, size, CRC check, timestamps and\n" +
			"producer. Damage (a bad CRC, a torn tail, a gap in the offsets) prints as a\n" +
			"line starting with \"damage\" where it is found, and the exit status is 3.\n\n" +
			"With --records, the records of __consumer_offsets-0 and __transaction_state-0\n" +
			"print decoded: committed offsets, groups, and transactional ids' states.\n\n" +
			"The metadata log (<data-dir>/__chronik_metadata-0, its .log files, or a\n" +
			".checkpoint snapshot) prints one line per event instead: offset, leader epoch,\n" +
			"timestamp, type, entity and fields; --type keeps only some event types.\n\n" +
			"A cluster node's Raft storage (<data-dir>/__raft or its raft.wal) prints its term,\n" +
			"vote and commit index, its snapshot, and each entry, with the metadata events\n" +
			"an entry of the Raft fallback path carries.\n\n" +
			"Examples:\n" +
			"   chronik log dump data/orders-0\n" +
			"   chronik log dump --records --from 100 --to 199 data/orders-0\n" +
			"   chronik log dump --json data/orders-0/00000000000000000000.log | jq .\n" +
			"   chronik log dump --type TopicCreated,TopicDeleted data/__chronik_metadata-0\n" +
			"   chronik log dump data/__raft",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "records", Aliases: []string{"r"}, Usage: "also decode each batch's records (keys, values, headers), decompressing them"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object a line"},
			&cli.Int64Flag{Name: "from", Value: 0, Usage: "first offset to show"},
			&cli.Int64Flag{Name: "to", Value: -1, Usage: "last offset to show (-1: to the end)"},
			&cli.IntFlag{Name: "max-batch-bytes", Value: segment.DefaultMaxBatchBytes, Usage: "refuse to decompress one batch into more than this many bytes"},
			&cli.StringSliceFlag{Name: "type", Usage: "metadata log only: print only events of these types (BrokerRegistered, TopicCreated, PartitionChanged, ...)"},
		},
		Action: runLogDump,
	}
}

// exitDamaged is the exit status of a dump that found damage.
const exitDamaged = 3

func runLogDump(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("log dump needs exactly one PATH: a partition directory or a .log file (see 'chronik log dump --help')", 2)
	}
	if c.Int64("from") < 0 {
		return cli.Exit("--from must be an offset, 0 or more", 2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	defer out.Flush()
	opts := segment.DumpOptions{
		Records:       c.Bool("records"),
		JSON:          c.Bool("json"),
		From:          c.Int64("from"),
		To:            c.Int64("to"),
		MaxBatchBytes: c.Int("max-batch-bytes"),
	}
	if isTerminal(os.Stderr) {
		opts.Progress = progressPrinter()
	}
	opts.Describe = internalDecoder(c.Args().First())
	if path := c.Args().First(); cluster.IsRaftPath(path) {
		if len(c.StringSlice("type")) > 0 || c.Bool("records") || c.IsSet("from") || c.IsSet("to") {
			return cli.Exit("--type, --records, --from and --to do not apply to Raft's storage: it prints whole", 2)
		}
		damage, err := cluster.DumpRaft(out, path, opts.JSON)
		if err != nil {
			return cli.Exit(err.Error(), 1)
		}
		if damage > 0 {
			return cli.Exit(fmt.Sprintf("found damage in %d place(s): see the lines starting with \"damage\"; a node cuts a torn tail off when it starts", damage), exitDamaged)
		}
		return nil
	}
	var res segment.DumpResult
	var err error
	if path := c.Args().First(); eventlog.IsMetadataPath(path) {
		eopts := eventlog.DumpOptions{JSON: opts.JSON, From: opts.From, To: opts.To, Progress: opts.Progress}
		for _, name := range c.StringSlice("type") {
			for _, n := range strings.Split(name, ",") {
				t, ok := eventlog.ParseType(strings.TrimSpace(n))
				if !ok {
					return cli.Exit(fmt.Sprintf("--type %q is not an event type: use BrokerRegistered, BrokerFenced, BrokerUnfenced, BrokerUnregistered, TopicCreated, PartitionChanged, TopicDeleted, ConfigChanged, ProducerIdsAllocated, LeaderChanged or NoOp", n), 2)
				}
				eopts.Types = append(eopts.Types, t)
			}
		}
		res, err = eventlog.DumpLog(out, path, eopts)
	} else {
		if len(c.StringSlice("type")) > 0 {
			return cli.Exit("--type filters metadata events: give the metadata log (<data-dir>/__chronik_metadata-0) or a .checkpoint file", 2)
		}
		res, err = segment.Dump(out, path, opts)
	}
	if opts.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if n := len(res.Damage); n > 0 {
		out.Flush()
		msg := fmt.Sprintf("found damage in %d place(s): see the lines starting with \"damage\"; a broker truncates a torn tail at start-up but refuses to open a partition damaged before it", n)
		if holder, live := dataDirInUse(c.Args().First()); live {
			msg += fmt.Sprintf(". The data directory is in use by %s: damage at the end of the newest segment can be a write in flight; dump again, or stop the broker for a settled view", holder)
		}
		return cli.Exit(msg, exitDamaged)
	}
	return nil
}

// internalDecoder returns the decoder of the records of the internal
// partition path is (a partition directory, or a segment file in one), or
// nil.
func internalDecoder(path string) func(key, value []byte) string {
	dir := filepath.Clean(path)
	if strings.HasSuffix(dir, ".log") {
		dir = filepath.Dir(dir)
	}
	switch filepath.Base(dir) {
	case segment.PartitionDir(group.Topic, 0):
		return group.DescribeRecord
	case segment.PartitionDir(txn.Topic, 0):
		return txn.DescribeRecord
	}
	return nil
}

// isTerminal reports whether f is a terminal (the TCGETS ioctl succeeds).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressPrinter reports progress on stderr at most five times a second.
func progressPrinter() func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 200*time.Millisecond || total == 0 {
			return
		}
		last = time.Now()
		fmt.Fprintf(os.Stderr, "\r\033[Kdumping: %d of %d MiB (%d%%)", done>>20, total>>20, done*100/total)
	}
}

func logStateCommand() *cli.Command {
	return &cli.Command{
		Name:      "state",
		Usage:     "replay a data directory's metadata log offline and print the cluster state",
		ArgsUsage: "DATA-DIR",
		Description: "Loads the newest valid snapshot of DATA-DIR/__chronik_metadata-0 and replays the\n" +
			"events after it, read-only and without a running server, then prints the\n" +
			"controller, brokers, topics with their partitions, leaders and in-sync replicas,\n" +
			"configs and producer ids. Damage stops the replay where it is found; it is\n" +
			"reported on stderr and the exit status is 3.\n\n" +
			"Examples:\n" +
			"   chronik log state data\n" +
			"   chronik log state --json data | jq '.topics'",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the state as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("log state needs exactly one DATA-DIR (see 'chronik log state --help')", 2)
			}
			s, damage, err := eventlog.ReplayDir(c.Args().First(), nil)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			out := bufio.NewWriter(os.Stdout)
			err = eventlog.PrintState(out, s, c.Bool("json"))
			out.Flush()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			for _, d := range damage {
				fmt.Fprintf(os.Stderr, "damage file=%s position=%d offset=%d reason=%q\n", d.File, d.Position, d.Offset, d.Why)
			}
			if len(damage) > 0 {
				return cli.Exit(fmt.Sprintf("the metadata log is damaged at offset %d: the state above is what comes before it", damage[0].Offset), exitDamaged)
			}
			return nil
		},
	}
}

// dataDirInUse reports whether a running broker holds the data directory
// of path: a partition directory or one of its files.
func dataDirInUse(path string) (string, bool) {
	dir := filepath.Clean(path)
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		dir = filepath.Dir(dir) // a file: its partition directory
	}
	return segment.DirInUse(filepath.Dir(dir))
}
