package broker

// Heartbeat v0–4.
//
// Behaviour: keeps the member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin,
// UNKNOWN_MEMBER_ID that its session expired, ILLEGAL_GENERATION that it is behind,
// FENCED_INSTANCE_ID that a static member (v3+ InstanceID) was replaced by a newer
// incarnation (Kafka's ClassicGroup.validateMember).
//
// Version notes: v1 throttle; v3 InstanceID; v4 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !c.allowedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	resp.ErrorCode = c.b.groups.Heartbeat(req)
	return resp, nil
}
