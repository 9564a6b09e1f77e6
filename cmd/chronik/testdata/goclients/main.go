// Command goclients drives a chronik broker with Go Kafka clients other
// than franz-go, which the broker's own tests use: IBM/sarama and
// segmentio/kafka-go. It is a module of its own so that the broker's
// go.mod carries neither.
//
// Usage:
//
//	goclients sarama HOST:PORT TOPIC GROUP [KAFKA-VERSION [BROKERS]]
//	goclients kafka-go HOST:PORT TOPIC GROUP
//
// BROKERS is how many brokers the cluster has (default 1). It prints
// "ok", or exits non-zero saying what went wrong.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: goclients sarama|kafka-go HOST:PORT TOPIC GROUP [KAFKA-VERSION [BROKERS]]")
		os.Exit(2)
	}
	client, addr, topic, group := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	var err error
	switch client {
	case "sarama":
		version, brokers := "", 1
		if len(os.Args) > 5 {
			version = os.Args[5]
		}
		if len(os.Args) > 6 {
			if brokers, err = strconv.Atoi(os.Args[6]); err != nil {
				fmt.Fprintf(os.Stderr, "brokers %q: %v\n", os.Args[6], err)
				os.Exit(2)
			}
		}
		err = runSarama(addr, topic, group, version, brokers)
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
