package broker

// DeleteRecords v0–2.
//
// Behaviour: moves each partition's log start offset forward to the given offset (-1:
// the high watermark); whole segments below it are deleted by storage. An offset above
// the high watermark is OFFSET_OUT_OF_RANGE. The answer is the new low watermark. A topic
// whose cleanup.policy lacks delete (compact alone) refuses with POLICY_VIOLATION, as
// Kafka's Partition.deleteRecordsOnLeader does.
//
// Version notes: v1 same as v0; v2 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		denied := !c.allowedTopic(kmsg.ACLOperationDelete, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if isInternalTopic(rt.Topic) {
				// Kafka's ReplicaManager.deleteRecordsOnLocalLog: "Cannot delete records of
				// internal topic …" (the response has no message field).
				sp.ErrorCode = kerr.InvalidTopicException.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p := b.partition(rt.Topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if !b.deletePolicy(rt.Topic) {
				sp.ErrorCode = kerr.PolicyViolation.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			off := rp.Offset
			p.appendMu.Lock()
			if off == -1 {
				off = p.log.HighWatermark()
			}
			switch {
			case off < 0 || off > p.log.HighWatermark():
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				lso, err := p.log.DeleteRecordsBefore(off)
				if err != nil {
					b.log.Error("delete records failed", "topic", p.topic, "partition", p.index, "offset", off, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				} else {
					sp.LowWatermark = lso
				}
			}
			p.appendMu.Unlock()
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// deletePolicy says whether a topic's cleanup.policy includes delete.
func (b *Broker) deletePolicy(topic string) bool {
	t := b.topic(topic)
	if t == nil {
		return true
	}
	del, _ := b.cleanupPolicy(b.snapshot(t).configs)
	return del
}
