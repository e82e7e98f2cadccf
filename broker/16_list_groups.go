package broker

// ListGroups v0–5.
//
// Behaviour: every group with members or committed offsets, classic and consumer
// (KIP-848: protocol type "consumer", states Empty, Assigning, Reconciling, Stable); v4
// filters by state, v5 by type ("classic", "consumer"), both ignoring case and
// surrounding spaces as Kafka's GroupMetadataManager.listGroups does ("stable" matches
// Stable). With an authorizer, only the groups the client may describe (all with
// DESCRIBE on the cluster).
//
// Version notes: v1 throttle; v3 flexible; v4 StatesFilter and GroupState; v5
// TypesFilter and GroupType.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(16, 0, 5, handleListGroups) }

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
		if !matchesFilter(req.StatesFilter, gi.State) || !matchesFilter(req.TypesFilter, gi.Type) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = gi.Name, gi.ProtocolType, gi.State, gi.Type
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// matchesFilter: an empty filter takes everything, else v must be one of it.
func matchesFilter(filter []string, v string) bool {
	return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool {
		return strings.EqualFold(strings.TrimSpace(f), v)
	})
}
