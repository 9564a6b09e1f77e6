package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/kafkatest"
)

// TestIdleConnectionsCloseWhenTheControllerMoves: once the controller is
// killed and another takes over, a surviving node closes a client
// connection that has been idle since, and leaves alone one that goes on
// sending requests and one opened after the move.
func TestIdleConnectionsCloseWhenTheControllerMoves(t *testing.T) {
	tc := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	controller := tc.controller(ctx, tc.client(1))
	survivor := 1 + controller%3

	idle := dialKafka(t, tc.kafka[survivor])
	busy := dialKafka(t, tc.kafka[survivor])
	busyErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				busyErr <- nil
				return
			case <-time.After(200 * time.Millisecond):
			}
			if err := apiVersions(busy); err != nil {
				busyErr <- err
				return
			}
		}
	}()

	tc.cmds[controller].Process.Signal(syscall.SIGKILL)
	tc.cmds[controller].Wait()
	idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the idle connection was not closed after the controller moved: %v", err)
	}

	later := dialKafka(t, tc.kafka[survivor])
	time.Sleep(2 * time.Second) // longer than a connection may be idle after a move
	if err := apiVersions(later); err != nil {
		t.Fatalf("a connection opened after the move was closed: %v", err)
	}
	close(stop)
	if err := <-busyErr; err != nil {
		t.Fatalf("a connection in use was closed: %v", err)
	}
}

// TestLibrdkafkaAdminAfterTheControllerDies: librdkafka's admin client,
// holding a connection to every broker, creates a topic soon after the
// controller is killed (librdkafka asks again where the controller is
// only when it connects, or every 5 minutes).
func TestLibrdkafkaAdminAfterTheControllerDies(t *testing.T) {
	python := debianPython(t, "confluent_kafka", "python3-confluent-kafka")
	eachLibrdkafka(t, func(t *testing.T, lib librdkafka) {
		lib.check(t, python, "-c", "import confluent_kafka; print(confluent_kafka.libversion())")
		tc := startCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		controller := tc.controller(ctx, tc.client(1))

		cmd := exec.Command(python, "testdata/librdkafka_admin_failover.py", strings.Join(tc.kafka[1:4], ","), "rdk-failover")
		cmd.Env = lib.env
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		out := bufio.NewReader(stdout)
		if line, err := out.ReadString('\n'); strings.TrimSpace(line) != "ready" {
			cmd.Wait()
			t.Fatalf("the client did not get ready: %q %v\n%s", line, err, stderr.String())
		}
		tc.cmds[controller].Process.Signal(syscall.SIGKILL)
		tc.cmds[controller].Wait()
		io.WriteString(stdin, "go\n")
		rest, _ := io.ReadAll(out)
		if err := cmd.Wait(); err != nil || strings.TrimSpace(string(rest)) != "ok" {
			t.Fatalf("librdkafka admin after the controller died: %v\n%s%s", err, rest, stderr.String())
		}
	})
}

// dialKafka opens a connection to the Kafka listener at addr and makes
// one request on it.
func dialKafka(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := apiVersions(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// apiVersions sends an ApiVersions v0 request on c and reads its answer.
func apiVersions(c net.Conn) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("moved-test")).AppendRequest(nil, req, 1)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(frame); err != nil {
		return err
	}
	_, err := kafkatest.ReadFrame(c)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
