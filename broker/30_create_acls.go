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
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	var err error
	resp.Results, err = noAuthorizerAnswers("CreateAcls", req.Creations,
		func(cr *kmsg.CreateACLsRequestCreation) bool {
			return unknownACLElement(cr.ResourceType, cr.ResourcePatternType, cr.Operation, cr.PermissionType)
		},
		func(code int16, msg *string) kmsg.CreateACLsResponseResult {
			r := kmsg.NewCreateACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, msg
			return r
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// noAuthorizer is Kafka's message for an ACL change without an authorizer (AclApis).
const noAuthorizer = "No Authorizer is configured."

// noAuthorizerAnswers answers each ACL creation or deletion filter of a request as Kafka
// answers it without an authorizer: SECURITY_DISABLED with noAuthorizer, one result per
// item (the request's getErrorResponse). An item naming an UNKNOWN (0) enum fails the
// whole request instead: the connection closes, as Kafka's request parsing refuses it.
func noAuthorizerAnswers[T, R any](api string, items []T, unknown func(*T) bool, result func(code int16, msg *string) R) ([]R, error) {
	out := make([]R, 0, len(items))
	for i := range items {
		if unknown(&items[i]) {
			return nil, fmt.Errorf("%w: %s names an UNKNOWN ACL element", errMalformed, api)
		}
		out = append(out, result(kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)))
	}
	return out, nil
}
