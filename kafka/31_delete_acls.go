package kafka

// DeleteAcls, versions 0-3: every filter is SECURITY_DISABLED, as from a
// Kafka broker without an authorizer (29_describe_acls.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DeleteACLs.Int16(), 0, 3, serve(func(_ *Broker, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrDeleteACLsResponse()
		for range req.Filters {
			r := kmsg.NewDeleteACLsResponseResult()
			msg := noAuthorizer
			r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, &msg
			resp.Results = append(resp.Results, r)
		}
		return resp, nil
	}))
}
