package kafka

// ApiVersions, versions 0-4 (v4 as v3: it only lets a supported feature's
// lowest version be 0, and this broker lists no features): the API keys
// this broker serves and their version ranges, from the handlers
// registered by the files named by key.
// An unsupported ApiVersions version is answered with v0 and
// UNSUPPORTED_VERSION, as Kafka does, so the client can retry.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.ApiVersions.Int16(), 0, 4, serve(func(b *Broker, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
		return apiVersions(0), nil
	}))
}

func apiVersions(errCode int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = errCode
	for key, h := range handlers {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, h.min, h.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	sort.Slice(resp.ApiKeys, func(i, j int) bool { return resp.ApiKeys[i].ApiKey < resp.ApiKeys[j].ApiKey })
	return resp
}
