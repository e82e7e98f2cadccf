package broker

// DeleteAcls v0–3.
//
// Behaviour: there is no authorizer, so, as Kafka's AclApis.handleDeleteAcls answers
// without one (DeleteAclsRequest.getErrorResponse), every filter gets SECURITY_DISABLED
// with "No Authorizer is configured." and no matching ACLs. A filter naming an UNKNOWN
// (0) resource type, pattern type, operation or permission type closes the connection,
// as Kafka's DeleteAclsRequest refuses it while parsing (normalizeAndValidate).
//
// Version notes: v1 ResourcePatternType (v0 is literal); v2 flexible; v3 user resources
// (KIP-554), nothing else.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	for _, f := range req.Filters {
		if unknownACLElement(f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType) {
			return nil, fmt.Errorf("%w: DeleteAcls filters contain UNKNOWN elements", errMalformed)
		}
	}
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
