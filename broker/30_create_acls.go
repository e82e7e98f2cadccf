package broker

// CreateAcls v0–3.
//
// Behaviour: with `authorizer: acl`, each creation is validated as Kafka's controller
// does (INVALID_REQUEST with its message: ANY/MATCH pattern, ANY operation or
// permission, an empty name, a CLUSTER not named kafka-cluster, a principal without a
// type) and the valid ones are added and written to acls.json before the answer (an ACL
// that exists already succeeds); the request needs ALTER on the CLUSTER (else every
// creation gets CLUSTER_AUTHORIZATION_FAILED). Without an authorizer, as Kafka answers
// without one (CreateAclsRequest.getErrorResponse), every creation gets
// SECURITY_DISABLED with "No Authorizer is configured." and nothing is kept. A creation
// naming an UNKNOWN (0) resource type, pattern type, operation or permission type closes
// the connection, as Kafka's CreateAclsRequest refuses it while parsing (validate).
//
// Version notes: v1 ResourcePatternType (v0 is literal); v2 flexible; v3 user resources
// (KIP-554), nothing else.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(30, 0, 3, handleCreateACLs) }

func handleCreateACLs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	result := func(code int16, msg *string) kmsg.CreateACLsResponseResult {
		r := kmsg.NewCreateACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = code, msg
		return r
	}
	var err error
	resp.Results, err = aclAnswers(c, "CreateAcls", req.Creations,
		func(cr *kmsg.CreateACLsRequestCreation) bool {
			return unknownACLElement(cr.ResourceType, cr.ResourcePatternType, cr.Operation, cr.PermissionType)
		}, result)
	if err != nil || resp.Results != nil {
		return resp, err
	}
	bindings := make([]acl.Binding, len(req.Creations))
	for i, cr := range req.Creations {
		bindings[i] = acl.Binding{ResourceType: cr.ResourceType, PatternType: cr.ResourcePatternType, ResourceName: cr.ResourceName,
			Principal: cr.Principal, Host: cr.Host, Operation: cr.Operation, Permission: cr.PermissionType}
	}
	for i, err := range c.b.acl.Create(bindings) {
		var inv *acl.InvalidError
		switch {
		case err == nil:
			resp.Results = append(resp.Results, result(0, nil))
			c.b.log.Info("ACL created", "acl", bindings[i].String(), "principal", c.principal)
		case errors.As(err, &inv):
			resp.Results = append(resp.Results, result(kerr.InvalidRequest.Code, kmsg.StringPtr(inv.Msg)))
		default:
			c.b.log.Error("cannot store ACL", "acl", bindings[i].String(), "err", err)
			resp.Results = append(resp.Results, result(kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())))
		}
	}
	return resp, nil
}

// noAuthorizer is Kafka's message for an ACL change without an authorizer (AclApis).
const noAuthorizer = "No Authorizer is configured."

// aclAnswers answers each ACL creation or deletion filter of a request when the broker
// will not act on it: without an authorizer SECURITY_DISABLED with noAuthorizer, as
// Kafka's getErrorResponse; without ALTER on the cluster CLUSTER_AUTHORIZATION_FAILED.
// It returns nil results when the request is to be carried out. An item naming an
// UNKNOWN (0) enum fails the whole request instead: the connection closes, as Kafka's
// request parsing refuses it.
func aclAnswers[T, R any](c *conn, api string, items []T, unknown func(*T) bool, result func(code int16, msg *string) R) ([]R, error) {
	for i := range items {
		if unknown(&items[i]) {
			return nil, fmt.Errorf("%w: %s names an UNKNOWN ACL element", errMalformed, api)
		}
	}
	var code int16
	var msg *string
	switch {
	case c.b.acl == nil:
		code, msg = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
	case !c.allowedCluster(kmsg.ACLOperationAlter):
		code, msg = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
	default:
		return nil, nil
	}
	out := make([]R, 0, len(items))
	for range items {
		out = append(out, result(code, msg))
	}
	return out, nil
}
