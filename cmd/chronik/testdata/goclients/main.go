// Command goclients drives a chronik broker with Go Kafka clients other
// than franz-go, which the broker's own tests use: IBM/sarama and
// segmentio/kafka-go. It is a module of its own so that the broker's
// go.mod carries neither.
//
// Usage:
//
//	goclients sarama HOST:PORT TOPIC GROUP [KAFKA-VERSION]
//	goclients kafka-go HOST:PORT TOPIC GROUP
//
// It prints "ok", or exits non-zero saying what went wrong.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: goclients sarama|kafka-go HOST:PORT TOPIC GROUP [KAFKA-VERSION]")
		os.Exit(2)
	}
	client, addr, topic, group := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	var err error
	switch client {
	case "sarama":
		version := ""
		if len(os.Args) > 5 {
			version = os.Args[5]
		}
		err = runSarama(addr, topic, group, version)
	case "kafka-go":
		err = runKafkaGo(addr, topic, group)
	default:
		err = fmt.Errorf("unknown client %q: want sarama or kafka-go", client)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", client, err)
		os.Exit(1)
	}
	fmt.Println("ok")
}
