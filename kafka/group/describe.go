package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeRecord says what a record of the offsets partition holds, for
// chronik log dump: a committed offset, a group's metadata, or the removal
// of either (a null value).
func DescribeRecord(key, value []byte) string {
	if len(key) < 2 {
		return fmt.Sprintf("undecodable key of %d bytes", len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Sprintf("undecodable offset key: %v", err)
		}
		head := fmt.Sprintf("offset group=%q topic=%q partition=%d", k.Group, k.Topic, k.Partition)
		if value == nil {
			return head + " deleted"
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Sprintf("%s undecodable value: %v", head, err)
		}
		epoch := int32(-1)
		if v.Version >= 3 {
			epoch = v.LeaderEpoch
		}
		return fmt.Sprintf("%s offset=%d leader_epoch=%d metadata=%q commit_time=%s", head, v.Offset, epoch, v.Metadata,
			time.UnixMilli(v.CommitTimestamp).UTC().Format(time.RFC3339Nano))
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Sprintf("undecodable group key: %v", err)
		}
		head := fmt.Sprintf("group %q", k.Group)
		if value == nil {
			return head + " deleted"
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Sprintf("%s undecodable value: %v", head, err)
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		return fmt.Sprintf("%s protocol_type=%q generation=%d protocol=%q leader=%q members=%d", head, v.ProtocolType, v.Generation,
			str(v.Protocol), str(v.Leader), len(v.Members))
	default:
		return fmt.Sprintf("key version %d (not written by chronik)", version)
	}
}
