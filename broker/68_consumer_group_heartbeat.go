package broker

// ConsumerGroupHeartbeat v0–1 (KIP-848, group.protocol=consumer).
//
// Behaviour: the coordinator assigns the partitions itself (broker/groups/consumer.go):
// epoch 0 joins, -1 leaves, -2 is a static member's leave (it keeps its partitions
// until its session timeout, for its next incarnation), any other epoch is a member's
// heartbeat, answered with its epoch and, when it changed or the request was full, its
// assignment. The target assignment comes from the server assignor the members ask for
// ("uniform", the default, or "range"); a partition moves to its new owner only once
// its previous owner's heartbeat no longer lists it. Errors as Kafka's
// GroupMetadataManager: INVALID_REQUEST for a malformed request (with Kafka's message),
// UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, UNKNOWN_MEMBER_ID,
// FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID, GROUP_ID_NOT_FOUND
// for a classic group with members (online migration is not served). Authorization, as
// Kafka's KafkaApis: READ on the group, DESCRIBE on every subscribed topic name (else
// TOPIC_AUTHORIZATION_FAILED).
//
// Version notes: v1 SubscribedTopicRegex, and the member id comes from the client
// (v0: the coordinator makes one when it is empty).

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
)

func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if !c.allowedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if len(req.SubscribedTopicNames) > 0 && len(c.deniedTopics(kmsg.ACLOperationDescribe, namesOf(req.SubscribedTopicNames, func(s *string) string { return *s }))) > 0 {
		resp.ErrorCode = kerr.TopicAuthorizationFailed.Code
		return resp, nil
	}
	host, _, _ := net.SplitHostPort(c.remote)
	return c.b.groups.ConsumerHeartbeat(groups.ConsumerHeartbeatRequest{Req: req, ClientID: c.clientID, ClientHost: "/" + host}), nil
}
