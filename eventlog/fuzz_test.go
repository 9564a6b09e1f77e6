package eventlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// FuzzDecode: no input panics; what decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, e := range []Event{
		reg(1, inc1), &BrokerFenced{BrokerID: 3},
		&TopicCreated{Name: "t", TopicID: tid1, PartitionCount: 3, ReplicationFactor: 1, Configs: []ConfigEntry{{"a", "b"}}},
		&PartitionChanged{Topic: "t", Partition: 1, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 3},
		&ConfigChanged{ResourceType: ResourceTopic, Resource: "t", Name: "k", Value: "v"},
		&ProducerIdsAllocated{BrokerID: 1, First: 5, Count: 9},
		&LeaderChanged{Term: 2, Leader: 1, Voters: []int32{1, 2, 3}}, &NoOp{},
	} {
		f.Add(Encode(e))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 6, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not wrap ErrDecode: %v", err)
			}
			return
		}
		again, err := Decode(Encode(e))
		if err != nil || string(Encode(again)) != string(Encode(e)) {
			t.Fatalf("re-encoding %s: %v", e.Type(), err)
		}
	})
}

// FuzzDecodeSnapshot: no input panics or allocates past the limits; a
// snapshot that decodes is a state that encodes back to a snapshot that
// decodes to the same state.
func FuzzDecodeSnapshot(f *testing.F) {
	s := NewState()
	Apply(s, reg(1, inc1), &TopicCreated{Name: "t", TopicID: tid1, PartitionCount: 2, ReplicationFactor: 1},
		&PartitionChanged{Topic: "t", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&ProducerIdsAllocated{BrokerID: 1, First: 0, Count: 10})
	s.Offset = 4
	good := EncodeSnapshot(s, 3)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(EncodeSnapshot(NewState(), 0))
	f.Add([]byte("CKSNAP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, epoch, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		st2, epoch2, err := DecodeSnapshot(EncodeSnapshot(st, epoch))
		if err != nil || epoch2 != epoch || string(EncodeSnapshot(st2, 0)) != string(EncodeSnapshot(st, 0)) {
			t.Fatalf("decoded snapshot does not round-trip: %v", err)
		}
	})
}

// wrapSnapshot frames an arbitrary body as a snapshot with valid checksums,
// so that the fuzzer reaches the body decoder.
func wrapSnapshot(body []byte, count uint32) []byte {
	var w encoder
	w.b = append(w.b, snapMagic...)
	w.uvarint(0)
	w.varint(0)
	w.varint(0)
	w.varint(0)
	out := zstdEncoder.EncodeAll(body, w.b)
	out = append(out, snapEndMagic...)
	out = binary.BigEndian.AppendUint32(out, count)
	out = binary.BigEndian.AppendUint64(out, 0)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32c))
}

// FuzzSnapshotBody feeds arbitrary event streams to the snapshot reader.
func FuzzSnapshotBody(f *testing.F) {
	var body []byte
	for _, e := range []Event{reg(1, inc1), &TopicCreated{Name: "t", TopicID: tid1, PartitionCount: 1, ReplicationFactor: 1}} {
		v := Encode(e)
		body = binary.AppendUvarint(body, uint64(len(v)))
		body = append(body, v...)
	}
	f.Add(body, uint32(2))
	f.Add(body[:len(body)-2], uint32(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, uint32(1))
	f.Fuzz(func(t *testing.T, body []byte, count uint32) {
		if _, _, err := DecodeSnapshot(wrapSnapshot(body, count)); err != nil && !errors.Is(err, ErrDecode) {
			t.Fatalf("error does not wrap ErrDecode: %v", err)
		}
	})
}
