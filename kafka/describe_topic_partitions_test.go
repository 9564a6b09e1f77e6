package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitions pages through every topic and through named
// ones, a few partitions at a time, as the Java admin client does.
func TestDescribeTopicPartitions(t *testing.T) {
	_, cl, adm := brokerClients(t)
	ctx := context.Background()
	for topic, n := range map[string]int32{"da": 3, "db": 2, "dc": 1} {
		if r, err := adm.CreateTopic(ctx, n, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
	}
	// pages asks from cursor on until no cursor comes back, and returns
	// what each page held, "topic:partition" or "topic!error".
	pages := func(topics []string, limit int32) []string {
		t.Helper()
		var out []string
		var cursor *kmsg.DescribeTopicPartitionsRequestCursor
		for range 20 {
			req := kmsg.NewPtrDescribeTopicPartitionsRequest()
			req.ResponsePartitionLimit, req.Cursor = limit, cursor
			for _, topic := range topics {
				req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: topic})
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			var page []string
			for _, rt := range resp.Topics {
				if rt.ErrorCode != 0 {
					page = append(page, fmt.Sprintf("%s!%d", *rt.Topic, rt.ErrorCode))
				}
				if rt.ErrorCode == 0 && rt.TopicID == [16]byte{} {
					t.Fatalf("%s: no topic id", *rt.Topic)
				}
				for _, rp := range rt.Partitions {
					if rp.LeaderID != 1 || len(rp.Replicas) != 1 {
						t.Fatalf("%s-%d: leader %d, replicas %v", *rt.Topic, rp.Partition, rp.LeaderID, rp.Replicas)
					}
					page = append(page, fmt.Sprintf("%s:%d", *rt.Topic, rp.Partition))
				}
			}
			out = append(out, strings.Join(page, " "))
			if resp.NextCursor == nil {
				return out
			}
			cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
		}
		t.Fatal("more than 20 pages")
		return nil
	}
	for _, tc := range []struct {
		topics []string
		limit  int32
		want   string
	}{
		{nil, 0, "__chronik_metadata:0 __consumer_offsets:0 __transaction_state:0 da:0 da:1 da:2 db:0 db:1 dc:0"},
		{nil, 2, "__chronik_metadata:0 __consumer_offsets:0|__transaction_state:0 da:0|da:1 da:2|db:0 db:1|dc:0"},
		{[]string{"db", "nope", "da"}, 4, "da:0 da:1 da:2 db:0|db:1 nope!3"},
		{[]string{"dc"}, 1, "dc:0"},
	} {
		if got := strings.Join(pages(tc.topics, tc.limit), "|"); got != tc.want {
			t.Errorf("topics %v, %d a page: %s\nwant %s", tc.topics, tc.limit, got, tc.want)
		}
	}
	// A cursor must name a topic asked for.
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "da"}}
	req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "db"}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("a cursor outside the topics: %v %+v", err, resp)
	}
}
