package broker

// DescribeAcls v0–3.
//
// Behaviour: there is no authorizer, so, as Kafka's AclApis.handleDescribeAcls answers
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
)

func init() { register(29, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeACLsRequest)
	if unknownACLElement(req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType) {
		return nil, fmt.Errorf("%w: DescribeAcls filter contains UNKNOWN elements", errMalformed)
	}
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode = kerr.SecurityDisabled.Code
	resp.ErrorMessage = kmsg.StringPtr("No Authorizer is configured on the broker")
	return resp, nil
}

// unknownACLElement says whether an ACL or ACL filter names the UNKNOWN (0) value of one
// of its enums, which Kafka's ACL requests refuse while they parse (the connection
// closes). Other unknown codes parse (as UNKNOWN) and get the API's answer.
func unknownACLElement(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) bool {
	return rt == 0 || pt == 0 || op == 0 || perm == 0
}
