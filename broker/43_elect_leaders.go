package broker

// ElectLeaders v0–2.
//
// Behaviour: one node leads every partition and is each one's only (so preferred)
// replica, so, as Kafka's ReplicationControlManager.electLeader answers a partition whose
// preferred leader leads (or, for an unclean election, that has a leader), every
// existing partition is ELECTION_NOT_NEEDED and nothing changes; an unknown topic or
// partition is UNKNOWN_TOPIC_OR_PARTITION ("No such topic as …", "No such partition as
// …"). A null topic list asks for every partition: as in Kafka, each topic is listed
// and the partitions that need no election are left out, so every topic has none. An
// election type other than preferred (0) and unclean (1) is INVALID_REQUEST, answered
// as Kafka's ElectLeadersRequest.getErrorResponse answers it: top-level (v1+) and on
// every partition asked for. Every topic and partition entry is answered, copies too.
//
// Version notes: v1 ElectionType and the top-level ErrorCode; v2 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	var typeErr *topicError
	if !c.allowedCluster(kmsg.ACLOperationAlter) { // every named partition gets it too
		typeErr = terr(kerr.ClusterAuthorizationFailed, "%s", kerr.ClusterAuthorizationFailed.Description)
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	} else if req.ElectionType != 0 && req.ElectionType != 1 {
		typeErr = terr(kerr.InvalidRequest, "Unknown election type %d", req.ElectionType)
		resp.ErrorCode = kerr.InvalidRequest.Code
	}
	if req.Topics == nil {
		if typeErr != nil {
			return resp, nil // no partition was named: only the top-level error
		}
		for _, name := range b.topicNames() {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = name
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p
			te := typeErr
			switch {
			case te != nil:
			case b.topic(rt.Topic) == nil:
				te = terr(kerr.UnknownTopicOrPartition, "No such topic as %s", rt.Topic)
			case b.partition(rt.Topic, p) == nil:
				te = terr(kerr.UnknownTopicOrPartition, "No such partition as %s-%d", rt.Topic, p)
			default:
				te = terr(kerr.ElectionNotNeeded, "%s", kerr.ElectionNotNeeded.Description)
			}
			te.set(&sp.ErrorCode, &sp.ErrorMessage)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
