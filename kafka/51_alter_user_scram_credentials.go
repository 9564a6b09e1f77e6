package kafka

// AlterUserScramCredentials, version 0: chronik has no authentication
// (SASL is not served), so it keeps no SCRAM credentials: each user to
// upsert is UNSUPPORTED_SASL_MECHANISM saying so, each to delete
// RESOURCE_NOT_FOUND (none exists).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.AlterUserSCRAMCredentials.Int16(), 0, 0, serve(func(_ *Broker, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrAlterUserSCRAMCredentialsResponse()
		answer := func(user string, code int16, msg string) {
			r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode, r.ErrorMessage = user, code, &msg
			resp.Results = append(resp.Results, r)
		}
		for _, d := range req.Deletions {
			answer(d.Name, kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist")
		}
		for _, u := range req.Upsertions {
			answer(u.Name, kerr.UnsupportedSaslMechanism.Code, "SCRAM credentials are not supported: chronik does not authenticate clients (no SASL)")
		}
		return resp, nil
	}))
}
