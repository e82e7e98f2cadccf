package broker

// ListGroups v0–4.
//
// Behaviour: every group with members or committed offsets; v4 filters by state, ignoring
// case and surrounding spaces as Kafka's GroupMetadataManager.listGroups does ("stable"
// matches Stable). With an authorizer, only the groups the client may describe (all
// with DESCRIBE on the cluster).
//
// Version notes: v1 throttle; v3 flexible; v4 StatesFilter and GroupState.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(16, 0, 4, handleListGroups) }

func handleListGroups(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	// With DESCRIBE on the cluster every group, else those the connection may describe
	// (Kafka's handleListGroupsRequest).
	all := c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, acl.ClusterName)
	for _, gi := range c.b.groups.List() {
		if !all && !c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, gi.Name) {
			continue
		}
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(f string) bool {
			return strings.EqualFold(strings.TrimSpace(f), gi.State)
		}) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState = gi.Name, gi.ProtocolType, gi.State
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
