package broker

// DeleteAcls v0–3.
//
// Behaviour: with `authorizer: acl`, every ACL a filter matches (acl.Filter, as in
// DescribeAcls) is removed, acls.json rewritten before the answer, and each filter's
// result lists the ACLs it matched (an ACL two filters match is listed for both, as
// Kafka's controller does); a filter matching nothing answers no ACLs and no error. The
// request needs ALTER on the CLUSTER (else every filter gets
// CLUSTER_AUTHORIZATION_FAILED). Without an authorizer, as Kafka answers without one
// (DeleteAclsRequest.getErrorResponse), every filter gets SECURITY_DISABLED with "No
// Authorizer is configured." and no matching ACLs. A filter naming an UNKNOWN (0)
// resource type, pattern type, operation or permission type closes the connection, as
// Kafka's DeleteAclsRequest refuses it while parsing (normalizeAndValidate).
//
// Version notes: v1 ResourcePatternType (v0 is literal); v2 flexible; v3 user resources
// (KIP-554), nothing else.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	result := func(code int16, msg *string) kmsg.DeleteACLsResponseResult {
		r := kmsg.NewDeleteACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = code, msg
		return r
	}
	var err error
	resp.Results, err = aclAnswers(c, "DeleteAcls", req.Filters,
		func(f *kmsg.DeleteACLsRequestFilter) bool {
			return unknownACLElement(f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType)
		}, result)
	if err != nil || resp.Results != nil {
		return resp, err
	}
	filters := make([]acl.Filter, len(req.Filters))
	for i, f := range req.Filters {
		filters[i] = acl.Filter{ResourceType: f.ResourceType, PatternType: f.ResourcePatternType, ResourceName: f.ResourceName,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}
	}
	matched, err := c.b.acl.Delete(filters)
	if err != nil {
		c.b.log.Error("cannot delete ACLs", "err", err)
		for range filters {
			resp.Results = append(resp.Results, result(kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())))
		}
		return resp, nil
	}
	for _, bs := range matched {
		r := result(0, nil)
		r.MatchingACLs = []kmsg.DeleteACLsResponseResultMatchingACL{}
		for _, b := range bs {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
			r.MatchingACLs = append(r.MatchingACLs, m)
			c.b.log.Info("ACL deleted", "acl", b.String(), "principal", c.principal)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
