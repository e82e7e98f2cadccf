package broker

// CreateAcls v0–3.
//
// Behaviour: there is no authorizer, so, as Kafka's AclApis.handleCreateAcls answers
// without one (CreateAclsRequest.getErrorResponse), every creation gets
// SECURITY_DISABLED with "No Authorizer is configured." and nothing is kept. A creation
// naming an UNKNOWN (0) resource type, pattern type, operation or permission type closes
// the connection, as Kafka's CreateAclsRequest refuses it while parsing (validate).
//
// Version notes: v1 ResourcePatternType (v0 is literal); v2 flexible; v3 user resources
// (KIP-554), nothing else.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(30, 0, 3, handleCreateACLs) }

func handleCreateACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateACLsRequest)
	for _, cr := range req.Creations {
		if unknownACLElement(cr.ResourceType, cr.ResourcePatternType, cr.Operation, cr.PermissionType) {
			return nil, fmt.Errorf("%w: CreateAcls creations contain unknown elements", errMalformed)
		}
	}
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// noAuthorizer is Kafka's message for an ACL change without an authorizer (AclApis).
const noAuthorizer = "No Authorizer is configured."
