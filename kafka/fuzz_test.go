package kafka

import (
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// requestFrame encodes req as a client would, without the size prefix.
func requestFrame(req kmsg.Request, version int16) []byte {
	req.SetVersion(version)
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 7)
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "cli"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// FuzzHandle: any request frame is answered or refused (the connection is
// closed); none crashes the broker.
func FuzzHandle(f *testing.F) {
	f.Add(requestFrame(kmsg.NewPtrApiVersionsRequest(), 3))
	f.Add(requestFrame(kmsg.NewPtrMetadataRequest(), 12))
	md := kmsg.NewPtrMetadataRequest()
	topic := kmsg.NewMetadataRequestTopic()
	name := "t"
	topic.Topic = &name
	md.Topics = append(md.Topics, topic)
	f.Add(requestFrame(md, 4))
	f.Add(requestFrame(kmsg.NewPtrFetchRequest(), 11))
	for _, epoch := range []int32{0, 1, -1} { // a new session, an incremental fetch, a close
		fr := kmsg.NewPtrFetchRequest()
		fr.SessionID, fr.SessionEpoch, fr.MaxWaitMillis = 1, epoch, 1
		fr.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 10}}}}
		fr.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "t", Partitions: []int32{1}}}
		f.Add(requestFrame(fr, 12))
	}
	// By topic id (v13+): the metadata log's fixed one, and one no topic has.
	for _, id := range [][16]byte{internalTopicIDs[eventlog.TopicName], {7}} {
		for _, epoch := range []int32{0, 1, -1} {
			fr := kmsg.NewPtrFetchRequest()
			fr.SessionID, fr.SessionEpoch, fr.MaxWaitMillis = 1, epoch, 1
			fr.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 10}}}}
			fr.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: id, Partitions: []int32{1}}}
			f.Add(requestFrame(fr, 13))
			f.Add(requestFrame(fr, 18))
		}
		pr := kmsg.NewPtrProduceRequest()
		pr.Acks, pr.TimeoutMillis = -1, 1000
		pr.Topics = []kmsg.ProduceRequestTopic{{TopicID: id, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: segmenttest.Values(1, "v")}}}}
		f.Add(requestFrame(pr, 13))
		mr := kmsg.NewPtrMetadataRequest()
		mr.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}}
		f.Add(requestFrame(mr, 13))
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation = "g", -1
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{TopicID: id, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
		f.Add(requestFrame(oc, 10))
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: id, Partitions: []int32{0}}}}, {Group: "g"}}
		f.Add(requestFrame(of, 10))
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	for _, ts := range []int64{-6, -5, -4, -3} {
		lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "t", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Timestamp: ts}}}}
		f.Add(requestFrame(lo, 11))
		f.Add(requestFrame(lo, 7))
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKeys = 2, []string{"g:t:0"}
	f.Add(requestFrame(fc, 6))
	dcl := kmsg.NewPtrDescribeClusterRequest()
	dcl.EndpointType, dcl.IncludeFencedBrokers = 2, true
	f.Add(requestFrame(dcl, 2))
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion, av.ClusterID, av.NodeID = "fuzz", "1", kmsg.StringPtr("test"), 1
	f.Add(requestFrame(av, 5))
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.Topics, dtp.ResponsePartitionLimit = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "t"}, {Topic: "u"}}, 1
	dtp.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "t", Partition: 1}
	f.Add(requestFrame(dtp, 0))
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g", "nobody"}
	f.Add(requestFrame(dg, 6))
	f.Add(requestFrame(kmsg.NewPtrProduceRequest(), 7))
	f.Add(requestFrame(kmsg.NewPtrCreateTopicsRequest(), 5))
	f.Add(requestFrame(kmsg.NewPtrListOffsetsRequest(), 5))
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "t", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	f.Add(requestFrame(dr, 2))
	f.Add(requestFrame(kmsg.NewPtrDescribeLogDirsRequest(), 4))
	txnID := "tx"
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = &txnID, 60000
	f.Add(requestFrame(ip, 4))
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.TransactionalID, ap.Topics = txnID, []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	f.Add(requestFrame(ap, 3))
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.Group = txnID, "g"
	f.Add(requestFrame(ao, 3))
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID, et.Commit = txnID, true
	f.Add(requestFrame(et, 3))
	to := kmsg.NewPtrTxnOffsetCommitRequest()
	to.TransactionalID, to.Group = txnID, "g"
	to.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	f.Add(requestFrame(to, 3))
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{txnID, "unknown"}
	f.Add(requestFrame(dt, 0))
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.StateFilters, lt.DurationFilterMillis = []string{"Ongoing", "Nope"}, 10
	f.Add(requestFrame(lt, 1))
	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "t", Partitions: []int32{0, 7}}}
	f.Add(requestFrame(dp, 0))
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	wm.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: 1, Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "t", Partitions: []int32{0}}}}}
	f.Add(requestFrame(wm, 1))
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}}}
	f.Add(requestFrame(oe, 4))
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"}, {ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "x"}}
	f.Add(requestFrame(dc, 4))
	f.Add(requestFrame(kmsg.NewPtrDescribeACLsRequest(), 3))
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = []kmsg.CreateACLsRequestCreation{{ResourceName: "t", Principal: "User:a", Host: "*"}}
	f.Add(requestFrame(ca, 3))
	da := kmsg.NewPtrDeleteACLsRequest()
	da.Filters = []kmsg.DeleteACLsRequestFilter{{}}
	f.Add(requestFrame(da, 3))
	el := kmsg.NewPtrElectLeadersRequest()
	el.ElectionType = 1
	el.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "t", Partitions: []int32{0, 5}}}
	f.Add(requestFrame(el, 2))
	f.Add(requestFrame(kmsg.NewPtrElectLeadersRequest(), 1)) // every partition
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t", Count: 3}, {Topic: "t", Count: 4}}
	f.Add(requestFrame(cp, 3))
	pa := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	pa.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1, 2}}, {Partition: 1}}}}
	f.Add(requestFrame(pa, 1))
	f.Add(requestFrame(kmsg.NewPtrListPartitionReassignmentsRequest(), 0))
	dq := kmsg.NewPtrDescribeClientQuotasRequest()
	dq.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: 2}, {EntityType: "user"}}
	f.Add(requestFrame(dq, 1))
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aq.Entries = []kmsg.AlterClientQuotasRequestEntry{{Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "user"}}, Ops: []kmsg.AlterClientQuotasRequestEntryOp{{Key: "k", Value: 1}}}}
	f.Add(requestFrame(aq, 1))
	ds := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	ds.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{{Name: "a"}, {Name: "a"}, {Name: "b"}}
	f.Add(requestFrame(ds, 0))
	as := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	as.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "a", Mechanism: 1}}
	as.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "b", Mechanism: 2, Iterations: 4096}}
	f.Add(requestFrame(as, 0))
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0, 0})

	b := memBroker(f, segmenttest.NewMemFS())
	s := NewServer(b, ServerOptions{}, slog.New(slog.DiscardHandler), nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 8 {
			return // serveConn refuses frames shorter than a header
		}
		p, err := s.handle(frame, &reqContext{clientID: "fuzz", host: "127.0.0.1"})
		if err != nil {
			return
		}
		// A request may wait (a long poll, a join for its group); give
		// it a moment, then leave it. The moment is short: the fuzzer
		// runs an interesting input many times over while it minimizes
		// it, and a long one stalls it for minutes on inputs that wait.
		done := make(chan []byte, 1)
		go func() {
			resp, _ := p.frame()
			done <- resp
		}()
		select {
		case resp := <-done:
			if resp != nil && int(binary.BigEndian.Uint32(resp)) != len(resp)-4 {
				t.Fatalf("response size prefix %d for %d bytes", binary.BigEndian.Uint32(resp), len(resp)-4)
			}
		case <-time.After(250 * time.Millisecond):
		}
	})
}
