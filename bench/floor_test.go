package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSyncFloorCreates: the floor serves franz-go's creates, one write a
// request in its file, and answers a name made before as Kafka does.
func TestSyncFloorCreates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	floor, err := StartSyncFloor(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer floor.Close()
	r, err := CreateTopics(ctx, floor.Addr, "f", 30, 1, nil)
	if err != nil || r.Ops != 30 {
		t.Fatalf("creates: %v, %+v", err, r)
	}
	if r, err := CreateTopics(ctx, floor.Addr, "g", 200, 100, nil); err != nil || r.Ops != 200 {
		t.Fatalf("creates 100 a request: %v, %+v", err, r)
	}
	if _, err := CreateTopics(ctx, floor.Addr, "f", 1, 1, nil); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("a name made before: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "sync-floor-*"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// 30 + 2 requests that created, each a 512 B write naming how many
	// topics there were.
	for i, want := range map[int]string{0: "1", 29: "30", 30: "130", 31: "230"} {
		if got := b[i*512 : i*512+len(want)]; string(got) != want || b[i*512+len(want)] != 0 {
			t.Errorf("write %d: %q, want %q", i, got, want)
		}
	}
	if !bytes.Equal(b[32*512:33*512], make([]byte, 512)) {
		t.Error("a write past the creates' (the name made before wrote nothing)")
	}
}

// FuzzSyncFloorRequest: the floor's request decoding never panics, and a
// frame it cannot read closes the connection (an error).
func FuzzSyncFloorRequest(f *testing.F) {
	req := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "t", 1, 1
	req.Topics = append(req.Topics, topic)
	for _, r := range []kmsg.Request{req, kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest()} {
		r.SetVersion(r.MaxVersion())
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, r, 7)
		f.Add(frame[4:])
	}
	f.Add([]byte{0, 19, 0, 7, 0, 0, 0, 1, 255, 255})
	dir := f.TempDir()
	file, err := os.CreateTemp(dir, "fuzz-floor-*")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	if err := file.Truncate(floorFileBytes); err != nil {
		f.Fatal(err)
	}
	s := &syncFloor{f: file, addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092}, topics: map[string]bool{}}
	f.Fuzz(func(t *testing.T, frame []byte) {
		out, err := s.handle(frame)
		if err == nil && (len(out) < 8 || int(binary.BigEndian.Uint32(out)) != len(out)-4) {
			t.Fatalf("a response frame of %d bytes says %d", len(out), binary.BigEndian.Uint32(out))
		}
	})
}
