package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

var errNotHere = errors.New("not the controller")

// failingCluster is a cluster of which this node is the controller, whose
// appends go to the node's own metadata log until fail is set.
type failingCluster struct {
	meta *eventlog.Log
	fail error
}

func (c *failingCluster) Append(events ...eventlog.Event) (int64, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	return c.meta.Append(events...)
}
func (c *failingCluster) AppendRelayed(events ...eventlog.Event) (Uncommitted, error) {
	_, err := c.Append(events...)
	return Uncommitted{}, err
}
func (c *failingCluster) WaitCommit(Uncommitted) bool  { return true }
func (c *failingCluster) Controller() (int32, bool)    { return 1, true }
func (c *failingCluster) NotController(err error) bool { return errors.Is(err, errNotHere) }
func (c *failingCluster) Quorum() Quorum               { return Quorum{Leader: 1, Voters: []int32{1}} }
func (c *failingCluster) Up(int32) bool                { return true }
func (c *failingCluster) Settle(time.Duration)         {}

// TestUncommittedMetadataIsRetriable: a metadata change the cluster did
// not commit, because the controller's term ended or because a majority
// did not hold it in time, is answered NOT_CONTROLLER or REQUEST_TIMED_OUT,
// both of which a Kafka client retries, by every API that changes
// metadata, and never as the API's own refusal (INVALID_PARTITIONS,
// INVALID_CONFIG), which a client gives up on.
func TestUncommittedMetadataIsRetriable(t *testing.T) {
	cl := &failingCluster{}
	b := memBroker(t, segmenttest.NewMemFS(), func(c *Config) { c.Cluster = cl })
	cl.meta = b.meta
	if _, err := b.meta.Append(&eventlog.BrokerRegistered{BrokerID: 1}); err != nil {
		t.Fatal(err)
	}
	create := func(name string) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		resp, err := createTopics(b, &reqContext{}, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
	}
	if code := create("t"); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	for _, c := range []struct {
		fail error
		want *kerr.Error
	}{
		{fmt.Errorf("the term ended: %w", errNotHere), kerr.NotController},
		{fmt.Errorf("a majority did not answer: %w", context.DeadlineExceeded), kerr.RequestTimedOut},
	} {
		cl.fail = c.fail
		codes := map[string]int16{"CreateTopics": create("u")}

		dt := kmsg.NewPtrDeleteTopicsRequest()
		dt.TopicNames = []string{"t"}
		resp, err := deleteTopics(b, dt)
		if err != nil {
			t.Fatal(err)
		}
		codes["DeleteTopics"] = resp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode

		cp := kmsg.NewPtrCreatePartitionsRequest()
		cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t", Count: 2}}
		resp, err = createPartitions(b, &reqContext{}, cp)
		if err != nil {
			t.Fatal(err)
		}
		codes["CreatePartitions"] = resp.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode

		ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
		v := "1000"
		ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &v}}}}
		resp, err = incrementalAlterConfigs(b, ia)
		if err != nil {
			t.Fatal(err)
		}
		codes["IncrementalAlterConfigs"] = resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode

		for api, code := range codes {
			if code != c.want.Code {
				t.Errorf("%s after %q: %v, want %v", api, c.fail, kerr.ErrorForCode(code), c.want)
			}
		}
	}
}
