package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestQuotasAndSCRAMWithKadm: chronik neither throttles nor authenticates:
// kadm describes no client quotas and no SCRAM users; setting either is
// refused with a reason; a bad quota filter is INVALID_REQUEST.
func TestQuotasAndSCRAMWithKadm(t *testing.T) {
	ctx, adm := adminForTest(t)
	alice := "alice"
	quotas, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 2}})
	if err != nil || len(quotas) != 0 {
		t.Fatalf("describe quotas: %v %v, want none", quotas, err)
	}
	if _, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "tenant", MatchType: 2}}); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("describe quotas of an unknown entity type: %v", err)
	}
	altered, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}},
	}})
	if err != nil || len(altered) != 1 || !errors.Is(altered[0].Err, kerr.InvalidRequest) {
		t.Errorf("set a quota: %+v %v, want INVALID_REQUEST", altered, err)
	}

	users, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil || len(users) != 0 {
		t.Fatalf("describe SCRAM users: %v %v, want none", users, err)
	}
	users, err = adm.DescribeUserSCRAMs(ctx, "alice")
	if err != nil || !errors.Is(users["alice"].Err, kerr.ResourceNotFound) {
		t.Errorf("describe alice's SCRAM credentials: %+v %v, want RESOURCE_NOT_FOUND", users, err)
	}
	changed, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha256}},
		[]kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "secret"}})
	if err != nil || !errors.Is(changed["alice"].Err, kerr.UnsupportedSaslMechanism) || !errors.Is(changed["bob"].Err, kerr.ResourceNotFound) {
		t.Errorf("alter SCRAM credentials: %+v %v", changed, err)
	}
}
