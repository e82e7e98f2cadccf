package broker

// ConsumerGroupDescribe v0–1 (KIP-848).
//
// Behaviour: a consumer group's state (Empty, Assigning, Reconciling, Stable), group
// and target assignment epochs, assignor, and its members: epoch, client id and host,
// subscription, current and target assignment (topic id, name and partitions).
// GROUP_ID_NOT_FOUND for an unknown group or a classic one. Authorization, as Kafka's
// KafkaApis: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED), and a group whose
// members subscribe to or are assigned a topic the client may not DESCRIBE is answered
// TOPIC_AUTHORIZATION_FAILED.
//
// Version notes: v1 MemberType (1: consumer protocol).

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group = name
		fail := func(e *kerr.Error, msg string) {
			g.ErrorCode = e.Code
			if msg != "" {
				g.ErrorMessage = &msg
			}
			resp.Groups = append(resp.Groups, g)
		}
		if !c.allowedGroup(kmsg.ACLOperationDescribe, name) {
			fail(kerr.GroupAuthorizationFailed, "")
			continue
		}
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeGroup, name)
		}
		gi, ok := c.b.groups.DescribeConsumer(name)
		if !ok {
			if _, known := c.b.groups.Describe(name); known {
				fail(kerr.GroupIDNotFound, fmt.Sprintf("Group %s is not a consumer group.", name))
			} else {
				fail(kerr.GroupIDNotFound, fmt.Sprintf("Group %s not found.", name))
			}
			continue
		}
		g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = gi.State, gi.Epoch, gi.AssignEpoch, gi.Assignor
		names := map[[16]byte]string{}
		topics := map[string]bool{}
		assignment := func(ps map[[16]byte][]int32) kmsg.Assignment {
			var a kmsg.Assignment
			for _, id := range slices.SortedFunc(maps.Keys(ps), func(x, y [16]byte) int { return slices.Compare(x[:], y[:]) }) {
				name, ok := names[id]
				if !ok {
					if t := c.b.topicByID(id); t != nil {
						name = t.name
					}
					names[id] = name
				}
				if name != "" {
					topics[name] = true
				}
				tp := kmsg.NewAssignmentTopicPartition()
				tp.TopicID, tp.Topic, tp.Partitions = id, name, ps[id]
				a.TopicPartitions = append(a.TopicPartitions, tp)
			}
			return a
		}
		for _, m := range gi.Members {
			gm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			gm.MemberID, gm.MemberEpoch, gm.ClientID, gm.ClientHost = m.ID, m.Epoch, m.ClientID, m.ClientHost
			gm.InstanceID, gm.RackID = strPtr(m.InstanceID), strPtr(m.RackID)
			gm.SubscribedTopics = m.SubscribedTopics
			if gm.SubscribedTopics == nil {
				gm.SubscribedTopics = []string{}
			}
			gm.SubscribedTopicRegex = strPtr(m.SubscribedTopicRegex)
			gm.Assignment, gm.TargetAssignment = assignment(m.Assigned), assignment(m.Target)
			gm.MemberType = 1 // the consumer protocol; classic members are not served in consumer groups
			for _, t := range m.SubscribedTopics {
				topics[t] = true
			}
			g.Members = append(g.Members, gm)
		}
		if len(c.deniedTopics(kmsg.ACLOperationDescribe, maps.Keys(topics))) > 0 {
			g = kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group = name
			fail(kerr.TopicAuthorizationFailed, "The group has described topic(s) that the client is not authorized to describe.")
			continue
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// strPtr is s as a nullable string: nil when empty.
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
