package broker

// AlterPartitionReassignments v0–1.
//
// Behaviour: one node, so the only assignment a partition can have is this node, which
// it has. Each partition is answered as Kafka's
// ReplicationControlManager.alterPartitionReassignment answers it on a one-broker
// cluster: an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; a null replica
// list (cancel) is NO_REASSIGNMENT_IN_PROGRESS, none ever is; an empty list, a broker
// other than this node, or this node twice is INVALID_REPLICA_ASSIGNMENT (Kafka's
// validateManualPartitionAssignment, with its messages); [this node] is the current
// assignment, so it succeeds and nothing changes. Every topic and partition entry is
// answered, copies too. AllowReplicationFactorChange (v1) is echoed: the only valid
// target keeps the factor at 1 either way.
//
// Version notes: v0 flexible; v1 AllowReplicationFactorChange (KIP-860).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(45, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	if !c.allowedCluster(kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			if te := b.reassignmentError(rt.Topic, rp.Partition, rp.Replicas); te != nil {
				te.set(&sp.ErrorCode, &sp.ErrorMessage)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// reassignmentError is one partition's answer: nil when replicas is its current
// assignment (this node alone).
func (b *Broker) reassignmentError(topic string, partition int32, replicas []int32) *topicError {
	if b.topic(topic) == nil {
		return terr(kerr.UnknownTopicOrPartition, "Unable to find a topic named %s.", topic)
	}
	if b.partition(topic, partition) == nil {
		return terr(kerr.UnknownTopicOrPartition, "Unable to find partition %s:%d.", topic, partition)
	}
	if replicas == nil {
		return terr(kerr.NoReassignmentInProgress, "%s", kerr.NoReassignmentInProgress.Description)
	}
	if len(replicas) == 0 {
		return terr(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	sorted := slices.Sorted(slices.Values(replicas))
	for i, id := range sorted {
		if id != b.opts.NodeID {
			return terr(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
		if i > 0 && sorted[i-1] == id {
			return terr(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", id)
		}
	}
	return nil
}
