package broker

// FindCoordinator v0–4.
//
// Behaviour: this node coordinates every consumer group (key type 0) and every
// transactional id (key type 1); other key types get INVALID_REQUEST.
//
// Version notes: v1 CoordinatorType, ErrorMessage; v3 flexible; v4 batched keys.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(10, 0, 4, handleFindCoordinator) }

func handleFindCoordinator(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := c.advertised()
	var code int16
	if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
		code = kerr.InvalidRequest.Code
	}
	// DESCRIBE on the group or transactional id, as Kafka's handleFindCoordinatorRequest.
	authCode := func(key string) int16 {
		switch {
		case code != 0:
			return code
		case req.CoordinatorType == 0 && !c.allowedGroup(kmsg.ACLOperationDescribe, key):
			return kerr.GroupAuthorizationFailed.Code
		case req.CoordinatorType == 1 && !c.allowedTxnID(kmsg.ACLOperationDescribe, key):
			return kerr.TransactionalIDAuthorizationFailed.Code
		}
		return 0
	}
	if req.Version < 4 {
		code = authCode(req.CoordinatorKey)
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = code, b.opts.NodeID, host, port
		if code != 0 {
			resp.NodeID, resp.Host, resp.Port = -1, "", -1
		}
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.ErrorCode, rc.NodeID, rc.Host, rc.Port = key, authCode(key), b.opts.NodeID, host, port
		if rc.ErrorCode != 0 {
			rc.NodeID, rc.Host, rc.Port = -1, "", -1
		}
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp, nil
}
