package broker

// ListPartitionReassignments v0.
//
// Behaviour: one node, replication factor 1: no reassignment is ever in progress
// (AlterPartitionReassignments starts none, 45_alter_partition_reassignments.go), so the
// answer lists no topic, whether all topics (null) or some are asked for; a topic that
// does not exist is left out without an error, as Kafka's
// ReplicationControlManager.listPartitionReassignments leaves it out.
//
// Version notes: v0 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	return resp, nil
}
