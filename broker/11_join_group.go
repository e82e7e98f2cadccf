package broker

// JoinGroup v0–9.
//
// Behaviour: the classic rebalance protocol (broker/groups). The request waits until the
// join phase completes: every known member rejoined, or the rebalance timeout passed. v4+
// members without an id get MEMBER_ID_REQUIRED with one to rejoin with; v5+ static
// members (group.instance.id) replace their previous incarnation, whose own requests then
// get FENCED_INSTANCE_ID. A protocol type or
// protocol set not shared with the group is INCONSISTENT_GROUP_PROTOCOL.
//
// Version notes: v1 RebalanceTimeout; v2 throttle; v4 member id required; v5 InstanceID;
// v6 flexible; v7 ProtocolType in the response; v8 Reason; v9 SkipAssignment (false).

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
)

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	if !c.allowedGroup(kmsg.ACLOperationRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = kerr.GroupAuthorizationFailed.Code, -1, req.MemberID
		return resp, nil
	}
	host, _, _ := net.SplitHostPort(c.remote)
	// The coordinator's call waits for the join phase; its own work is a few map updates.
	var resp *kmsg.JoinGroupResponse
	c.wait(func() {
		resp = c.b.groups.JoinGroup(c.ctx, groups.JoinRequest{Req: req, ClientID: c.clientID, ClientHost: "/" + host})
	})
	return resp, nil
}
