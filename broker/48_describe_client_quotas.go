package broker

// DescribeClientQuotas v0–1.
//
// Behaviour: lists the stored quotas (49_alter_client_quotas.go) of the entities that
// match the filter, as Kafka's ClientQuotasImage.describe matches them: a component
// with MATCH_TYPE_EXACT needs the entity's name of that type to be the match, with
// MATCH_TYPE_DEFAULT the default entity (<default>) of that type, with
// MATCH_TYPE_SPECIFIED any name or the default; strict also needs the entity to have no
// type the filter does not name (an empty non-strict filter lists everything). Entries
// come sorted by entity (user, then client id, then the ip entities; named after
// default), each with its entity types in name order. The filter is checked first as Kafka's ClientQuotasImage.describe checks it,
// and a bad one answered as Kafka answers the exception
// (DescribeClientQuotasRequest.getErrorResponse: the error, its message, a null entry
// list): an empty entity type, a type named twice, a null match with
// MATCH_TYPE_EXACT or a match with MATCH_TYPE_DEFAULT or MATCH_TYPE_SPECIFIED, an
// unknown match type, or ip with user or client-id is INVALID_REQUEST; an entity type
// other than user, client-id and ip is UNSUPPORTED_VERSION.
//
// Version notes: v1 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/quota"
)

func init() { register(48, 0, 1, handleDescribeClientQuotas) }

func handleDescribeClientQuotas(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if e := quotaFilterError(req.Components); e != nil {
		e.set(&resp.ErrorCode, &resp.ErrorMessage)
		resp.Entries = nil
		return resp, nil
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	f := quota.Filter{Strict: req.Strict}
	for _, comp := range req.Components {
		m := map[kmsg.QuotasMatchType]quota.Match{kmsg.QuotasMatchTypeExact: quota.MatchExact,
			kmsg.QuotasMatchTypeDefault: quota.MatchDefault, kmsg.QuotasMatchTypeAny: quota.MatchAny}[comp.MatchType]
		switch comp.EntityType {
		case quotaIP:
			f.IP = m
			if comp.Match != nil {
				f.IPName = *comp.Match
			}
		case quotaUser:
			f.User = m
			if comp.Match != nil {
				f.UserName = *comp.Match
			}
		case quotaClientID:
			f.ClientID = m
			if comp.Match != nil {
				f.ClientIDName = *comp.Match
			}
		}
	}
	for _, eq := range c.b.quotas.Quotas().Describe(f) {
		re := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, comp := range []struct {
			typ  string
			name quota.Name
		}{{quotaClientID, eq.Entity.ClientID}, {quotaIP, eq.Entity.IP}, {quotaUser, eq.Entity.User}} {
			if comp.name.Kind == quota.Absent {
				continue
			}
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type = comp.typ
			if comp.name.Kind == quota.Named {
				name := comp.name.Name
				ent.Name = &name
			}
			re.Entity = append(re.Entity, ent)
		}
		for t, v := range eq.Values {
			if v == 0 {
				continue
			}
			val := kmsg.NewDescribeClientQuotasResponseEntryValue()
			val.Key, val.Value = quota.Keys[t], v
			re.Values = append(re.Values, val)
		}
		resp.Entries = append(resp.Entries, re)
	}
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
