package broker

// DescribeGroups v0–5.
//
// Behaviour: state, protocol and members (client id, host, metadata, assignment) of each
// group; an unknown group is reported Dead with no error, as Kafka does, and so is a
// consumer group (KIP-848; Kafka 4 answers these versions so, ConsumerGroupDescribe
// describes it). Without DESCRIBE on a group: GROUP_AUTHORIZATION_FAILED for it.
//
// Version notes: v1 throttle; v3 authorized operations (when asked for: those the ACLs
// allow, every group operation without an authorizer, authorize.go); v4 InstanceID; v5
// flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		if !c.allowedGroup(kmsg.ACLOperationDescribe, name) {
			g.Group, g.ErrorCode = name, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		gi, _ := c.b.groups.Describe(name)
		if gi.Type == "consumer" {
			gi = groups.GroupInfo{State: "Dead"}
		}
		g.Group, g.State, g.ProtocolType, g.Protocol = name, gi.State, gi.ProtocolType, gi.Protocol
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeGroup, name)
		}
		for _, m := range gi.Members {
			gm := kmsg.NewDescribeGroupsResponseGroupMember()
			gm.MemberID, gm.ClientID, gm.ClientHost = m.ID, m.ClientID, m.ClientHost
			gm.ProtocolMetadata, gm.MemberAssignment = m.Metadata, m.Assignment
			if m.InstanceID != "" {
				iid := m.InstanceID
				gm.InstanceID = &iid
			}
			g.Members = append(g.Members, gm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
