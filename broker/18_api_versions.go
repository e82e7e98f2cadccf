package broker

// ApiVersions v0–4.
//
// Behaviour: lists every registered API key with its version range (handlers.go). A
// request at a version above 4 is answered per KIP-511 (conn.go): a v0 response with
// UNSUPPORTED_VERSION and the ApiVersions range, so the client retries at one we know.
// The response header is always v0, even for the flexible v3+ (KIP-511).
//
// Version notes: v1 ThrottleMillis; v3 flexible, ClientSoftwareName/Version (validated as
// Kafka does); v3+ could carry features (KIP-584), we advertise none.

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(18, 0, 4, handleApiVersions) }

var softwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func handleApiVersions(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!softwareRe.MatchString(req.ClientSoftwareName) || !softwareRe.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	resp.ApiKeys = apiKeys()
	return resp, nil
}

func unsupportedApiVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	ak := kmsg.NewApiVersionsResponseApiKey()
	ak.ApiKey, ak.MinVersion, ak.MaxVersion = 18, handlers[18].min, handlers[18].max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{ak}
	return resp
}
