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

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	var err error
	resp.Results, err = noAuthorizerAnswers("DeleteAcls", req.Filters,
		func(f *kmsg.DeleteACLsRequestFilter) bool {
			return unknownACLElement(f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType)
		},
		func(code int16, msg *string) kmsg.DeleteACLsResponseResult {
			r := kmsg.NewDeleteACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, msg
			return r
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
