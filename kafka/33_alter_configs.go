package kafka

// AlterConfigs, versions 0-2 (the older, non-incremental API): replaces a
// topic's whole configuration with the one given; keys left out return to
// their defaults. Written as ConfigChanged events in one batch and applied
// to the open partitions at once. Broker resources are INVALID_REQUEST; an
// unknown key or a bad value INVALID_CONFIG.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.AlterConfigs.Int16(), 0, 2, serve(alterConfigs))
}

func alterConfigs(b *Broker, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrAlterConfigsResponse()
	for _, r := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		code, msg := int16(kerr.InvalidRequest.Code), "only topic configs can be altered (broker configs are read-only: set them with chronik start's flags)"
		if r.ResourceType == kmsg.ConfigResourceTypeTopic {
			changes := map[string]*string{}
			for _, c := range r.Configs {
				changes[c.Name] = c.Value
			}
			code, msg = b.changeTopicConfigs(r.ResourceName, changes, true, req.ValidateOnly)
		}
		rr.ErrorCode = code
		if msg != "" {
			rr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
