package broker

// LeaveGroup v0–5.
//
// Behaviour: removes the member (v0–2) or members (v3+, by member id or instance id) and
// starts a rebalance for the rest. By instance id a static member leaves unless the
// request names another member id: an old incarnation gets FENCED_INSTANCE_ID and cannot
// remove its replacement (Kafka's classicGroupLeave).
//
// Version notes: v1 throttle; v3 batched members; v4 flexible; v5 Reason.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !c.allowedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = c.b.groups.LeaveGroup(req.Group, []string{req.MemberID}, []string{""})[0]
		return resp, nil
	}
	ids := make([]string, len(req.Members))
	iids := make([]string, len(req.Members))
	for i, m := range req.Members {
		ids[i] = m.MemberID
		if m.InstanceID != nil {
			iids[i] = *m.InstanceID
		}
	}
	for i, code := range c.b.groups.LeaveGroup(req.Group, ids, iids) {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = req.Members[i].MemberID, req.Members[i].InstanceID, code
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
