package broker

// CreatePartitions v0–3.
//
// Behaviour: grows a topic to Count partitions (never shrinks: INVALID_PARTITIONS). A
// manual assignment may only name this node and must have one entry per new partition
// (INVALID_REPLICA_ASSIGNMENT, as Kafka's ReplicationControlManager). ValidateOnly checks
// without creating. A topic named twice is answered once, with INVALID_REQUEST, and not
// grown (Kafka's ControllerApis.createPartitions).
// Records keyed before the change may hash to a different partition after it, as in Kafka.
//
// Version notes: v1 same as v0; v2 flexible; v3 same as v2.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	names := make([]string, len(req.Topics))
	for i, rt := range req.Topics {
		names[i] = rt.Topic
	}
	dup := findDups(names)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var te *topicError
		if isDup, first := dup.take(rt.Topic); isDup {
			if !first {
				continue // answered already
			}
			te = terr(kerr.InvalidRequest, "Duplicate topic name.")
		}
		if te == nil && !c.allowedTopic(kmsg.ACLOperationAlter, rt.Topic) {
			te = terr(kerr.TopicAuthorizationFailed, "%s", kerr.TopicAuthorizationFailed.Description)
		}
		for _, a := range rt.Assignment {
			if te == nil && (len(a.Replicas) != 1 || a.Replicas[0] != b.opts.NodeID) {
				te = terr(kerr.InvalidReplicaAssignment, "each new partition must be on broker %d alone", b.opts.NodeID)
			}
		}
		if te == nil && isInternalTopic(rt.Topic) {
			// Kafka's controller would add them (kafka-topics.sh refuses); here a group's
			// partition is fixed by the count (groups.PartitionFor), so it cannot change.
			te = terr(kerr.InvalidPartitions, "The number of partitions for the offsets topic cannot be changed.")
		}
		if te == nil {
			assigned := -1
			if rt.Assignment != nil {
				assigned = len(rt.Assignment)
			}
			te = b.addPartitions(rt.Topic, rt.Count, assigned, req.ValidateOnly)
		}
		if te != nil {
			te.set(&st.ErrorCode, &st.ErrorMessage)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
