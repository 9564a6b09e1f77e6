// Command chronik is a Kafka-compatible event-streaming broker whose cluster
// metadata is itself an event log.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "chronik:", err)
		if ec, ok := err.(cli.ExitCoder); ok {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "chronik",
		Usage:   "a Kafka-compatible event-streaming broker whose cluster metadata is an event log",
		Version: version,
		Description: "chronik speaks the Kafka wire protocol: point any Kafka client at it.\n" +
			"Partitions are stored as Kafka record batches in memory-mapped, fsync-batched\n" +
			"segment files; cluster metadata is the event log __chronik_metadata-0.",
		HideHelpCommand: true,
		Commands: []*cli.Command{
			startCommand(),
			logCommand(),
			benchCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
	}
}
