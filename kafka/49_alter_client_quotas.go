package kafka

// AlterClientQuotas, versions 0-1: chronik does not throttle clients, so
// it does not take quotas it would not enforce: each entry is
// INVALID_REQUEST saying so (validate-only too).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.AlterClientQuotas.Int16(), 0, 1, serve(func(_ *Broker, req *kmsg.AlterClientQuotasRequest) (kmsg.Response, error) {
		resp := kmsg.NewPtrAlterClientQuotasResponse()
		for _, e := range req.Entries {
			re := kmsg.NewAlterClientQuotasResponseEntry()
			for _, en := range e.Entity {
				ren := kmsg.NewAlterClientQuotasResponseEntryEntity()
				ren.Type, ren.Name = en.Type, en.Name
				re.Entity = append(re.Entity, ren)
			}
			msg := "client quotas are not supported: chronik does not throttle clients"
			re.ErrorCode, re.ErrorMessage = kerr.InvalidRequest.Code, &msg
			resp.Entries = append(resp.Entries, re)
		}
		return resp, nil
	}))
}
