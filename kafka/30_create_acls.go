package kafka

// CreateAcls, versions 0-3: every creation is SECURITY_DISABLED, as from a
// Kafka broker without an authorizer (29_describe_acls.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.CreateACLs.Int16(), 0, 3, serve(func(_ *Broker, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrCreateACLsResponse()
		for range req.Creations {
			r := kmsg.NewCreateACLsResponseResult()
			msg := noAuthorizer
			r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, &msg
			resp.Results = append(resp.Results, r)
		}
		return resp, nil
	}))
}
