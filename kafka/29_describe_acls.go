package kafka

// DescribeAcls, versions 0-3: chronik has no authorizer (every client may
// do everything), so it answers as a Kafka broker without one does:
// SECURITY_DISABLED. Admin tools then show that ACLs are off rather than
// an unsupported request.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// noAuthorizer is Kafka's message for ACL requests to a broker without an
// authorizer.
const noAuthorizer = "No Authorizer is configured on the broker"

func init() {
	register(kmsg.DescribeACLs.Int16(), 0, 3, serve(func(_ *Broker, _ *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrDescribeACLsResponse()
		msg := noAuthorizer
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, &msg
		return resp, nil
	}))
}
