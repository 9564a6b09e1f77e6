package txn

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeRecord says what a record of the transaction state partition
// holds, for chronik log dump: a transactional id's state, or its
// expiry (a null value).
func DescribeRecord(key, value []byte) string {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Sprintf("undecodable transaction key: %v", err)
	}
	head := fmt.Sprintf("transactional_id=%q", k.TransactionalID)
	if value == nil {
		return head + " expired"
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Sprintf("%s undecodable value: %v", head, err)
	}
	var parts []string
	for _, t := range v.Topics {
		ps := make([]string, len(t.Partitions))
		sorted := append([]int32(nil), t.Partitions...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for i, p := range sorted {
			ps[i] = fmt.Sprint(p)
		}
		parts = append(parts, t.Topic+":"+strings.Join(ps, ","))
	}
	started := "-"
	if v.StartTimestamp >= 0 {
		started = time.UnixMilli(v.StartTimestamp).UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s producer=%d/%d state=%s timeout=%dms partitions=[%s] started=%s updated=%s", head, v.ProducerID, v.ProducerEpoch,
		v.State, v.TimeoutMillis, strings.Join(parts, " "), started, time.UnixMilli(v.LastUpdateTimestamp).UTC().Format(time.RFC3339Nano))
}
