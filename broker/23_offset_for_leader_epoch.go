package broker

// OffsetForLeaderEpoch v0–4.
//
// Behaviour: every partition here has leader epoch 0 (Metadata says so), so the leader
// epoch cache Kafka keeps is the single entry {epoch 0 starts at the log start offset}.
// The answer is what Kafka's LeaderEpochFileCache.endOffsetFor gives for that cache:
// epoch 0 (the latest) ends at the log end offset (the high watermark: one node), a
// requested epoch below 0 other than -1 ends where epoch 0 starts (the log start
// offset, answered with the requested epoch), and -1 or an epoch above 0 is unknown:
// no error, LeaderEpoch -1, EndOffset -1. Before that, as Kafka's
// Partition.lastOffsetForLeaderEpoch, a CurrentLeaderEpoch other than -1 is checked
// against the leader's 0: newer is UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH. An
// unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION. Every topic and partition
// entry is answered, copies too (Kafka's request collection keeps them). ReplicaID
// (v3+: -1 consumer, -2 debug, a broker id for a follower) is accepted and changes
// nothing: Kafka answers every caller from the leader (fetchOnlyFromLeader = true), and
// the high watermark a consumer may see is the log end here.
//
// Version notes: v1 LeaderEpoch in the response; v2 CurrentLeaderEpoch and throttle;
// v3 ReplicaID; v4 flexible. (Kafka 4.0 dropped v0–1; Kafka 3.x serves them.)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	// DESCRIBE on each topic; a follower (replica id >= 0) needs CLUSTER_ACTION.
	var denied map[string]bool
	if b.acl != nil {
		names := namesOf(req.Topics, func(t *kmsg.OffsetForLeaderEpochRequestTopic) string { return t.Topic })
		if req.ReplicaID >= 0 && !c.allowedCluster(kmsg.ACLOperationClusterAction) {
			denied = allNames(names)
		} else {
			denied = c.deniedTopics(kmsg.ACLOperationDescribe, names)
		}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case denied[rt.Topic]:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case leaderEpochError(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = leaderEpochError(rp.CurrentLeaderEpoch)
			case rp.LeaderEpoch == 0: // the latest epoch: it ends at the log end
				sp.LeaderEpoch, sp.EndOffset = 0, p.log.HighWatermark()
			case rp.LeaderEpoch < -1: // before the first epoch: it ends where epoch 0 starts
				sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, p.log.LogStartOffset()
			default: // -1 (undefined) or newer than any epoch: unknown, no error
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
