package broker

// DescribeClientQuotas v0–1.
//
// Behaviour: no client quota is set here (none can be: AlterClientQuotas refuses to set
// one, 49_alter_client_quotas.go), so a valid filter matches nothing: an empty list.
// The filter is checked first as Kafka's ClientQuotasImage.describe checks it, and a
// bad one answered as Kafka answers the exception (DescribeClientQuotasRequest
// .getErrorResponse: the error, its message, a null entry list): an empty entity type, a
// type named twice, a null match with MATCH_TYPE_EXACT or a match with MATCH_TYPE_DEFAULT
// or MATCH_TYPE_SPECIFIED, an unknown match type, or ip with user or client-id is
// INVALID_REQUEST; an entity type other than user, client-id and ip is
// UNSUPPORTED_VERSION.
//
// Version notes: v1 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(48, 0, 1, handleDescribeClientQuotas) }

func handleDescribeClientQuotas(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if e := quotaFilterError(req.Components); e != nil {
		e.set(&resp.ErrorCode, &resp.ErrorMessage)
		resp.Entries = nil
		return resp, nil
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	return resp, nil
}

// The quota entity types Kafka knows (ClientQuotaEntity).
const (
	quotaUser     = "user"
	quotaClientID = "client-id"
	quotaIP       = "ip"
)

// quotaFilterError checks a DescribeClientQuotas filter as Kafka's
// ClientQuotasImage.describe does, in its order, and returns the first rule broken.
func quotaFilterError(components []kmsg.DescribeClientQuotasRequestComponent) *topicError {
	seen := map[string]bool{}
	for _, comp := range components {
		typ := comp.EntityType
		switch {
		case typ == "":
			return terr(kerr.InvalidRequest, "Invalid empty entity type.")
		case seen[typ]:
			return terr(kerr.InvalidRequest, "Entity type %s cannot appear more than once in the filter.", typ)
		case typ != quotaUser && typ != quotaClientID && typ != quotaIP:
			return terr(kerr.UnsupportedVersion, "Unsupported entity type %s", typ)
		}
		seen[typ] = true
		switch comp.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if comp.Match == nil {
				return terr(kerr.InvalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
			}
		case kmsg.QuotasMatchTypeDefault:
			if comp.Match != nil {
				return terr(kerr.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
			}
		case kmsg.QuotasMatchTypeAny:
			if comp.Match != nil {
				return terr(kerr.InvalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
			}
		default:
			return terr(kerr.InvalidRequest, "Unknown match type %d", comp.MatchType)
		}
	}
	if seen[quotaIP] && (seen[quotaUser] || seen[quotaClientID]) {
		return terr(kerr.InvalidRequest, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.")
	}
	return nil
}
