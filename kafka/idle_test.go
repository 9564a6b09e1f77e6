package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestIdleConnectionsAreClosed: a connection that sends nothing for
// ConnectionsMaxIdle is closed; one that keeps sending stays, and so does
// one waiting longer than that for a long-poll fetch's answer.
func TestIdleConnectionsAreClosed(t *testing.T) {
	l := serveLoopback(t, ServerOptions{ConnectionsMaxIdle: 300 * time.Millisecond})
	b, dial, send := l.b, l.dial, l.send

	idle := dial()
	busy := dial()
	for range 8 { // 800 ms, a request every 100 ms
		v := kmsg.NewPtrApiVersionsRequest()
		v.SetVersion(0)
		send(busy, v, 1)
		if err := answer(busy, time.Second); err != nil {
			t.Fatalf("a connection that keeps sending: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := answer(idle, 2*time.Second); err == nil {
		t.Fatal("an idle connection got an answer")
	} else if isTimeout(err) {
		t.Fatal("an idle connection stayed open")
	}

	// A long-poll fetch of an empty partition, answered after 800 ms.
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "polled", 1, 1
	create.Topics = append(create.Topics, rt)
	if resp, err := createTopics(b, &reqContext{}, create); err != nil || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %v", err, resp)
	}
	poll := dial()
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(4)
	f.ReplicaID, f.MaxWaitMillis, f.MinBytes, f.MaxBytes = -1, 800, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "polled"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	send(poll, f, 7)
	if err := answer(poll, 3*time.Second); err != nil {
		t.Fatalf("a long-poll fetch longer than the idle time: %v", err)
	}
	v := kmsg.NewPtrApiVersionsRequest() // the connection is still open
	v.SetVersion(0)
	send(poll, v, 8)
	if err := answer(poll, time.Second); err != nil {
		t.Fatalf("after a long-poll fetch longer than the idle time: %v", err)
	}
}
