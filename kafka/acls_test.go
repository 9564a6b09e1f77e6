package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestACLsAreOff: the ACL APIs answer SECURITY_DISABLED, as a Kafka broker
// without an authorizer does; kadm reports it for each.
func TestACLsAreOff(t *testing.T) {
	ctx, adm := adminForTest(t)
	b := kadm.NewACLs().Topics("t").Allow("User:alice").AllowHosts("*").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	created, err := adm.CreateACLs(ctx, b)
	if err != nil || len(created) != 1 || !errors.Is(created[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("create: %v, %+v", err, created)
	}
	described, err := adm.DescribeACLs(ctx, b)
	if err != nil || len(described) != 1 || !errors.Is(described[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("describe: %v, %+v", err, described)
	}
	deleted, err := adm.DeleteACLs(ctx, b)
	if err != nil || len(deleted) != 1 || !errors.Is(deleted[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("delete: %v, %+v", err, deleted)
	}
}
