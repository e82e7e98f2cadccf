package broker

// DeleteGroups v0–2.
//
// Behaviour: deletes an empty group and its committed offsets (NON_EMPTY_GROUP while it
// has members, GROUP_ID_NOT_FOUND when unknown).
//
// Version notes: v1 same as v0; v2 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		if !c.allowedGroup(kmsg.ACLOperationDelete, name) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		} else {
			g.ErrorCode = c.b.groups.Delete(name)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
