package kafka

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// TestAcksZeroFailureClosesTheConnection: an acks=0 produce gets no
// response; when a partition of it fails (an unknown topic, a corrupt
// batch) the broker closes the connection, as Kafka does, so that the
// client learns of it; one that succeeds leaves the connection serving.
func TestAcksZeroFailureClosesTheConnection(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	if _, err := b.createTopic("z", 1, nil); err != nil {
		t.Fatal(err)
	}
	produce := func(topic string, batch []byte) []byte {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = 0, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}
		req.Topics = append(req.Topics, rt)
		return requestFrame(req, 9)
	}
	// open returns whether the connection still answers after frame:
	// an ApiVersions request sent after it gets its response.
	open := func(frame []byte) bool {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, f := range [][]byte{frame, requestFrame(kmsg.NewPtrApiVersionsRequest(), 3)} {
			c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
			c.Write(f)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var size [4]byte
		_, err = io.ReadFull(c, size[:])
		return err == nil
	}
	good := segmenttest.Values(1, "v")
	corrupt := segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: []byte("v")}}), 1, segment.CodecNone, 0)
	corrupt[len(corrupt)-1] ^= 0xff
	if !open(produce("z", good)) {
		t.Error("a good acks=0 produce closed the connection")
	}
	if open(produce("z", corrupt)) {
		t.Error("an acks=0 produce of a corrupt batch left the connection open")
	}
	if open(produce("nope", good)) {
		t.Error("an acks=0 produce to an unknown topic left the connection open")
	}
	if end := mustPartition(t, b, "z").log.EndOffset(); end != 1 {
		t.Errorf("end offset %d, want 1: only the good batch is stored", end)
	}
}

func mustPartition(t *testing.T, b *Broker, topic string) *partition {
	t.Helper()
	part, code := b.openPartition(topic, 0)
	if code != 0 {
		t.Fatalf("open %s: code %d", topic, code)
	}
	return part
}
