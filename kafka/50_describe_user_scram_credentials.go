package kafka

// DescribeUserScramCredentials, version 0: chronik has no authentication
// and so no SCRAM credentials (AlterUserScramCredentials refuses them): all
// users (a null list) are none, and each user asked for is
// RESOURCE_NOT_FOUND, one asked twice DUPLICATE_RESOURCE, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DescribeUserSCRAMCredentials.Int16(), 0, 0, serve(func(_ *Broker, req *kmsg.DescribeUserSCRAMCredentialsRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrDescribeUserSCRAMCredentialsResponse()
		resp.Results = []kmsg.DescribeUserSCRAMCredentialsResponseResult{}
		asked, answered := map[string]int{}, map[string]bool{}
		for _, u := range req.Users {
			asked[u.Name]++
		}
		for _, u := range req.Users {
			if answered[u.Name] {
				continue
			}
			answered[u.Name] = true
			r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			r.User = u.Name
			code, msg := kerr.ResourceNotFound.Code, "Attempt to describe a user credential that does not exist"
			if asked[u.Name] > 1 {
				code, msg = kerr.DuplicateResource.Code, "Cannot describe SCRAM credentials for the same user twice in a single request"
			}
			r.ErrorCode, r.ErrorMessage = code, &msg
			resp.Results = append(resp.Results, r)
		}
		return resp, nil
	}))
}
