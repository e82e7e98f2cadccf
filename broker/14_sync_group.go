package broker

// SyncGroup v0–5.
//
// Behaviour: the leader's request carries every member's assignment; each member's
// request returns its own, waiting for the leader's if it has not arrived. A request for
// another generation is ILLEGAL_GENERATION; during a new join phase
// REBALANCE_IN_PROGRESS; from a replaced static member FENCED_INSTANCE_ID; v5 naming
// another protocol type or name than the group's INCONSISTENT_GROUP_PROTOCOL (Kafka's
// validateSyncGroup).
//
// Version notes: v1 throttle; v3 InstanceID; v4 flexible; v5 ProtocolType/Protocol.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	if !c.allowedGroup(kmsg.ACLOperationRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	// The coordinator's call waits for the leader's assignment.
	var resp *kmsg.SyncGroupResponse
	c.wait(func() { resp = c.b.groups.SyncGroup(c.ctx, req) })
	return resp, nil
}
