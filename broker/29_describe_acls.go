package broker

// DescribeAcls v0–3.
//
// Behaviour: with `authorizer: acl`, the ACLs the filter matches (acl.Filter: ANY and
// MATCH pattern types, null name/principal/host match all), grouped by resource, as
// Kafka's AclApis.handleDescribeAcls answers them; the request needs DESCRIBE on the
// CLUSTER (else CLUSTER_AUTHORIZATION_FAILED). Without an authorizer, as Kafka answers
// without one, the filter is answered with SECURITY_DISABLED and "No Authorizer is
// configured on the broker" and no resources (an empty list would read as "no ACLs
// exist"). A filter naming an UNKNOWN (0) resource type, pattern type, operation or
// permission type closes the connection: Kafka's DescribeAclsRequest refuses it while
// the request parses (normalizeAndValidate), before any handler runs.
//
// Version notes: v1 ResourcePatternType (v0 is literal); v2 flexible; v3 user
// resources (KIP-554), nothing else.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(29, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeACLsRequest)
	if unknownACLElement(req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType) {
		return nil, fmt.Errorf("%w: DescribeAcls filter contains UNKNOWN elements", errMalformed)
	}
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	switch {
	case c.b.acl == nil:
		resp.ErrorCode = kerr.SecurityDisabled.Code
		resp.ErrorMessage = kmsg.StringPtr("No Authorizer is configured on the broker")
		return resp, nil
	case !c.allowedCluster(kmsg.ACLOperationDescribe):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return resp, nil
	}
	f := acl.Filter{ResourceType: req.ResourceType, PatternType: req.ResourcePatternType, ResourceName: req.ResourceName,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	for _, b := range c.b.acl.Describe(f) { // sorted by resource
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != b.ResourceType || resp.Resources[n-1].ResourceName != b.ResourceName ||
			resp.Resources[n-1].ResourcePatternType != b.PatternType {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			resp.Resources = append(resp.Resources, r)
			n++
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, a)
	}
	return resp, nil
}

// unknownACLElement says whether an ACL or ACL filter names the UNKNOWN (0) value of one
// of its enums, which Kafka's ACL requests refuse while they parse (the connection
// closes). Other unknown codes parse (as UNKNOWN) and get the API's answer.
func unknownACLElement(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) bool {
	return rt == 0 || pt == 0 || op == 0 || perm == 0
}
