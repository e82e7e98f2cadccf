package broker

// OffsetDelete v0.
//
// Behaviour: deletes a group's committed offsets for the given partitions, durably;
// partitions of a topic the group is still subscribed to get GROUP_SUBSCRIBED_TO_TOPIC,
// an unknown group GROUP_ID_NOT_FOUND, a group with members of another protocol type than
// "consumer" NON_EMPTY_GROUP, a partition that does not exist UNKNOWN_TOPIC_OR_PARTITION.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	// As in Kafka (KafkaApis.handleOffsetDeleteRequest), a partition that does not exist
	// is answered UNKNOWN_TOPIC_OR_PARTITION by the broker; the group sees only the rest.
	// Authorization: DELETE on the group (else GROUP_AUTHORIZATION_FAILED), READ on each
	// topic (else TOPIC_AUTHORIZATION_FAILED for its partitions).
	if !c.allowedGroup(kmsg.ACLOperationDelete, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	denied := c.deniedTopics(kmsg.ACLOperationRead, namesOf(req.Topics, func(t *kmsg.OffsetDeleteRequestTopic) string { return t.Topic }))
	topics := map[string][]int32{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if !denied[t.Topic] && c.b.partition(t.Topic, p.Partition) != nil {
				topics[t.Topic] = append(topics[t.Topic], p.Partition)
			}
		}
	}
	code, perTopic := c.b.groups.DeleteOffsets(req.Group, topics)
	resp.ErrorCode = code
	if code != 0 {
		return resp, nil
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, perTopic[t.Topic]
			if denied[t.Topic] {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if c.b.partition(t.Topic, p.Partition) == nil {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
