package kafka

// ApiVersions, versions 0-5 (v4 as v3: it only lets a supported feature's
// lowest version be 0, and this broker lists no features; v5: the cluster
// and node the client expects, checkExpected): the API keys this broker
// serves and their version ranges, from the handlers registered by the
// files named by key.
// An unsupported ApiVersions version is answered with v0 and
// UNSUPPORTED_VERSION, as Kafka does, so the client can retry.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/eventlog"
)

func init() {
	register(kmsg.ApiVersions.Int16(), 0, 5, serve(func(b *Broker, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
		if req.Version >= 5 {
			if code := b.checkExpected(req.ClusterID, req.NodeID); code != 0 {
				resp := kmsg.NewPtrApiVersionsResponse()
				resp.ErrorCode = code
				return resp, nil
			}
		}
		return apiVersions(0), nil
	}))
}

// checkExpected answers KIP-1242's question (ApiVersions v5): is this the
// cluster and the node the client believes it reached? A client sets both
// once it knows them (INVALID_REQUEST for one alone); either other than
// this node's is REBOOTSTRAP_REQUIRED, and the client rediscovers the
// cluster from its seeds instead of sending its requests to the wrong
// broker. A node that holds no cluster id yet checks the node id only.
func (b *Broker) checkExpected(clusterID *string, nodeID int32) int16 {
	switch {
	case clusterID == nil && nodeID < 0:
		return 0
	case clusterID == nil || nodeID < 0:
		return kerr.InvalidRequest.Code
	case nodeID != b.cfg.NodeID:
		return kerr.RebootstrapRequired.Code
	}
	var own string
	b.meta.View(func(s *eventlog.State) { own = clusterIDOf(s, b.cfg.ClusterID) })
	if own != "" && own != *clusterID {
		return kerr.RebootstrapRequired.Code
	}
	return 0
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
