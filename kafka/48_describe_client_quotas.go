package kafka

// DescribeClientQuotas, versions 0-1: chronik does not throttle clients and
// holds no quotas (AlterClientQuotas refuses them), so a valid filter
// matches none, as Kafka answers where none is set. A filter of an
// unknown entity type (Kafka's are user, client-id and ip), one given
// twice, or an exact match without a name is INVALID_REQUEST.

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.DescribeClientQuotas.Int16(), 0, 1, serve(func(_ *Broker, req *kmsg.DescribeClientQuotasRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrDescribeClientQuotasResponse()
		var seen []string
		for _, c := range req.Components {
			var msg string
			switch {
			case !slices.Contains(quotaEntityTypes, c.EntityType):
				msg = fmt.Sprintf("quota entity type %q is not one of %v", c.EntityType, quotaEntityTypes)
			case slices.Contains(seen, c.EntityType):
				msg = fmt.Sprintf("quota entity type %q is given twice", c.EntityType)
			case c.MatchType == kmsg.QuotasMatchTypeExact && c.Match == nil:
				msg = fmt.Sprintf("an exact match of %q needs a name", c.EntityType)
			case c.MatchType < kmsg.QuotasMatchTypeExact || c.MatchType > kmsg.QuotasMatchTypeAny:
				msg = fmt.Sprintf("match type %d is not 0 (exact), 1 (default) or 2 (any)", c.MatchType)
			}
			if msg != "" {
				resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, &msg
				return resp, nil
			}
			seen = append(seen, c.EntityType)
		}
		resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
		return resp, nil
	}))
}

// quotaEntityTypes are the entities Kafka sets quotas for.
var quotaEntityTypes = []string{"user", "client-id", "ip"}
