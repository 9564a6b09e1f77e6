package kafka

// IncrementalAlterConfigs, versions 0-1: SET and DELETE of topic configs,
// as ConfigChanged events in one batch, applied to the open partitions at
// once. APPEND and SUBTRACT (list configs) and broker resources are
// INVALID_REQUEST; an unknown key or a bad value INVALID_CONFIG.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.IncrementalAlterConfigs.Int16(), 0, 1, serve(incrementalAlterConfigs))
}

func incrementalAlterConfigs(b *Broker, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	for _, r := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		code, msg := int16(0), ""
		changes := map[string]*string{}
		if r.ResourceType != kmsg.ConfigResourceTypeTopic {
			code, msg = kerr.InvalidRequest.Code, "only topic configs can be altered (broker configs are read-only: set them with chronik start's flags)"
		}
		for _, c := range r.Configs {
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				changes[c.Name] = c.Value
				if c.Value == nil {
					code, msg = kerr.InvalidConfig.Code, "SET of "+c.Name+" without a value"
				}
			case kmsg.IncrementalAlterConfigOpDelete:
				changes[c.Name] = nil
			default:
				code, msg = kerr.InvalidRequest.Code, "only SET and DELETE are supported"
			}
		}
		if code == 0 {
			code, msg = b.changeTopicConfigs(r.ResourceName, changes, false, req.ValidateOnly)
		}
		rr.ErrorCode = code
		if msg != "" {
			rr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
