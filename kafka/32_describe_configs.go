package kafka

// DescribeConfigs, versions 0-4: topic configs (retention.ms,
// retention.bytes, segment.bytes, segment.ms, max.message.bytes,
// cleanup.policy), each with its value, and whether it is the default or
// set on the topic; and this node's broker configs, read-only
// (broker_configs.go). Other resource types: INVALID_REQUEST.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.DescribeConfigs.Int16(), 0, 4, serve(describeConfigs))
}

func describeConfigs(b *Broker, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	b.settle()
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		if r.ResourceType == kmsg.ConfigResourceTypeBroker {
			b.describeBroker(r, &rr)
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		if r.ResourceType != kmsg.ConfigResourceTypeTopic {
			msg := "only topic and broker configs are served"
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, &msg
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		var tp *eventlog.Topic
		b.meta.View(func(s *eventlog.State) { tp = s.Topics[r.ResourceName] })
		if tp == nil {
			rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		wanted := map[string]bool{}
		for _, n := range r.ConfigNames {
			wanted[n] = true
		}
		for _, k := range sortedConfigKeys() {
			if len(wanted) > 0 && !wanted[k] {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = k
			v, source := topicConfigValue(tp.Configs, k)
			c.Value, c.Source = &v, kmsg.ConfigSource(source)
			c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
			switch k {
			case "cleanup.policy":
				c.ConfigType = kmsg.ConfigTypeList
			case "segment.bytes", "max.message.bytes", "min.insync.replicas":
				c.ConfigType = kmsg.ConfigTypeInt
			case "message.timestamp.type":
				c.ConfigType = kmsg.ConfigTypeString
			default:
				c.ConfigType = kmsg.ConfigTypeLong
			}
			rr.Configs = append(rr.Configs, c)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
