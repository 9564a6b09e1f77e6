package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsSpecialTimestamps: each special timestamp at the versions
// that know it, answered as Kafka answers for a topic without tiered
// storage; at an older version, UNSUPPORTED_VERSION.
func TestListOffsetsSpecialTimestamps(t *testing.T) {
	b, addr := brokerForTest(t, t.TempDir())
	ctx := context.Background()
	cl := must(kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("lo")))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "lo"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	for _, ts := range []int64{1000, 3000, 2000} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Timestamp: time.UnixMilli(ts)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var del kadm.Offsets
	del.AddOffset("lo", 0, 1, -1)
	if r, err := adm.DeleteRecords(ctx, del); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	ask := func(version int16, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = version
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "lo", Partitions: []kmsg.ListOffsetsRequestTopicPartition{rp}}}
		resp, err := listOffsets(b, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	}
	for _, tc := range []struct {
		version int16
		ts      int64
		code    int16
		offset  int64
		stamp   int64
	}{
		{11, -2, 0, 1, -1},     // the log start
		{11, -1, 0, 3, -1},     // the high watermark
		{11, -3, 0, 1, 3000},   // the highest timestamp
		{11, -4, 0, 1, -1},     // the local log start: the log start
		{11, -5, 0, -1, -1},    // the latest tiered offset: none
		{11, -6, 0, -1, -1},    // the earliest not uploaded: none
		{11, 2000, 0, 1, 3000}, // the first record at or after 2000, and its time
		{6, -3, kerr.UnsupportedVersion.Code, -1, -1},
		{7, -4, kerr.UnsupportedVersion.Code, -1, -1},
		{8, -5, kerr.UnsupportedVersion.Code, -1, -1},
		{10, -6, kerr.UnsupportedVersion.Code, -1, -1},
		{8, -4, 0, 1, -1},
		{9, -5, 0, -1, -1},
	} {
		rp := ask(tc.version, tc.ts)
		if rp.ErrorCode != tc.code || rp.Offset != tc.offset || rp.Timestamp != tc.stamp {
			t.Errorf("v%d timestamp %d: code %d, offset %d, timestamp %d; want %d, %d, %d",
				tc.version, tc.ts, rp.ErrorCode, rp.Offset, rp.Timestamp, tc.code, tc.offset, tc.stamp)
		}
	}
}
