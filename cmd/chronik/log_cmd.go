package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/chronik-stream/chronik/segment"
)

func logCommand() *cli.Command {
	return &cli.Command{
		Name:  "log",
		Usage: "inspect logs on disk, without a running server",
		Subcommands: []*cli.Command{
			logDumpCommand(),
		},
	}
}

func logDumpCommand() *cli.Command {
	return &cli.Command{
		Name:      "dump",
		Usage:     "print the record batches of a partition directory or a .log file",
		ArgsUsage: "PATH",
		Description: "PATH is a partition directory (<data-dir>/<topic>-<partition>) or one segment\n" +
			"file (NNNNNNNNNNNNNNNNNNNN.log). Each batch prints as one line: offsets, position,\n" +
			"leader epoch, record count, compression codec, size, CRC check, timestamps and\n" +
			"producer. Damage (a bad CRC, a torn tail, a gap in the offsets) prints as a\n" +
			"line starting with \"damage\" where it is found, and the exit status is 3.\n\n" +
			"Examples:\n" +
			"   chronik log dump data/orders-0\n" +
			"   chronik log dump --records --from 100 --to 199 data/orders-0\n" +
			"   chronik log dump --json data/orders-0/00000000000000000000.log | jq .",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "records", Aliases: []string{"r"}, Usage: "also decode each batch's records (keys, values, headers), decompressing them"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object a line"},
			&cli.Int64Flag{Name: "from", Value: 0, Usage: "first offset to show"},
			&cli.Int64Flag{Name: "to", Value: -1, Usage: "last offset to show (-1: to the end)"},
			&cli.IntFlag{Name: "max-batch-bytes", Value: segment.DefaultMaxBatchBytes, Usage: "refuse to decompress one batch into more than this many bytes"},
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
	if isatty.IsTerminal(os.Stderr.Fd()) {
		opts.Progress = progressPrinter()
	}
	res, err := segment.Dump(out, c.Args().First(), opts)
	if opts.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if n := len(res.Damage); n > 0 {
		out.Flush()
		return cli.Exit(fmt.Sprintf("found damage in %d place(s): see the lines starting with \"damage\"; a broker truncates a torn tail at start-up but refuses to open a partition damaged before it", n), exitDamaged)
	}
	return nil
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
