package segment_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
)

// TestMarkerIsAKafkaControlBatch: a marker is a valid transactional control
// batch of its producer that Kafka's record decoding reads as an
// EndTxnMarker, and ControlType tells commit from abort.
func TestMarkerIsAKafkaControlBatch(t *testing.T) {
	for _, commit := range []bool{true, false} {
		b := segment.BuildMarker(42, 3, commit, 7, 1000)
		h, err := segment.ValidateBatch(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Control() || !h.Transactional() || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != -1 || h.RecordCount != 1 {
			t.Fatalf("header %+v", h)
		}
		recs, err := segment.DecodeRecords(b, 1<<10)
		if err != nil {
			t.Fatal(err)
		}
		var key kmsg.ControlRecordKey
		var val kmsg.EndTxnMarker
		if err := key.ReadFrom(recs[0].Key); err != nil {
			t.Fatal(err)
		}
		if err := val.ReadFrom(recs[0].Value); err != nil || val.CoordinatorEpoch != 7 {
			t.Fatalf("marker value %+v, %v", val, err)
		}
		typ, ok := segment.ControlType(b)
		want := int16(segment.ControlAbort)
		if commit {
			want = segment.ControlCommit
		}
		if !ok || typ != want || int16(key.Type) != want {
			t.Fatalf("commit=%v: type %d (ok %v), key %d", commit, typ, ok, key.Type)
		}
	}
	if _, ok := segment.ControlType(segment.BuildBatch(segment.AppendRecords(nil, []segment.Record{{Value: []byte("v")}}), 1, segment.CodecNone, 1)); ok {
		t.Fatal("a data batch read as a control batch")
	}
}

// FuzzControlType: any bytes give a control type or not, without a panic.
func FuzzControlType(f *testing.F) {
	f.Add(segment.BuildMarker(1, 0, true, 0, 1))
	f.Add(segment.BuildMarker(1, 0, false, 0, 1))
	f.Add(segment.BuildBatchAs(segment.AppendRecords(nil, []segment.Record{{Key: []byte{0}}}), 1, segment.CodecNone, 1, segment.BatchProducer{ID: 1, Control: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		segment.ControlType(b)
	})
}
