package broker

// ListOffsets v1–7.
//
// Behaviour: timestamp -2 (earliest) answers the log start offset, -1 (latest) the high
// watermark (= log end offset on one node), or with IsolationLevel read_committed (v2+)
// the last stable offset (the first offset of the earliest open transaction), -3 (max timestamp, v7) the offset and timestamp of the newest batch's
// last record (exact for producers whose timestamps do not go backwards; see
// UNSUPPORTED.md), and any other timestamp the first offset whose batch has a timestamp at
// or after it, or offset -1 when there is none (with read_committed also when it is at
// or past the last stable offset, as Kafka's Partition.fetchOffsetForTimestamp). Without tiered storage, as Kafka's
// UnifiedLog.fetchOffsetByTimestamp answers then, -4 (earliest local, KIP-405) is the log
// start offset and -5 (latest tiered, KIP-1005) offset -1; a timestamp below -5 is no
// error but a search, which finds the first batch from the log start. As in Kafka, every
// copy of a partition named more than once in one request gets INVALID_REQUEST, and a
// CurrentLeaderEpoch other than -1 is checked against the leader epoch (0): older is
// FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH (Partition.checkCurrentLeaderEpoch).
//
// Version notes: v1 single offset; v2 IsolationLevel; v4 CurrentLeaderEpoch/LeaderEpoch
// (always 0); v6 flexible; v7 max timestamp (KIP-734).

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(2, 1, 7, handleListOffsets) }

func handleListOffsets(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	var tps []topicPartition
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			tps = append(tps, topicPartition{rt.Topic, rp.Partition})
		}
	}
	dup := findDups(tps)
	denied := c.deniedTopics(kmsg.ACLOperationDescribe, namesOf(req.Topics, func(t *kmsg.ListOffsetsRequestTopic) string { return t.Topic }))
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, 0
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case dup[topicPartition{rt.Topic, rp.Partition}]:
				sp.ErrorCode = kerr.InvalidRequest.Code
			case denied[rt.Topic]:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case leaderEpochError(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = leaderEpochError(rp.CurrentLeaderEpoch)
			case rp.Timestamp == -2 || rp.Timestamp == -4: // -4: earliest local; nothing is tiered
				sp.Offset = p.log.LogStartOffset()
			case rp.Timestamp == -1 && req.IsolationLevel == 1: // read_committed: the last stable offset
				sp.Offset = p.log.LastStableOffset()
			case rp.Timestamp == -1:
				sp.Offset = p.log.HighWatermark()
			case rp.Timestamp == -3:
				sp.Offset, sp.Timestamp = b.maxTimestamp(p)
			case rp.Timestamp == -5: // latest tiered: nothing is tiered, so no offset
			default: // any other timestamp, negative ones too, is searched for

				if off, ts, ok := p.log.OffsetForTimestamp(rp.Timestamp); ok && (req.IsolationLevel != 1 || off < p.log.LastStableOffset()) {
					sp.Offset, sp.Timestamp = off, ts
				}
			}
			if sp.ErrorCode != 0 || sp.Offset == -1 {
				sp.LeaderEpoch = -1 // Kafka's unknown-offset answer keeps the field's default
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// leaderEpochError checks a request's CurrentLeaderEpoch against this node's leader epoch,
// which is always 0: -1 means "not known to the client" and is not checked.
func leaderEpochError(current int32) int16 {
	switch {
	case current == -1 || current == 0:
		return 0
	case current < 0:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}

// maxTimestamp reads the last batch's header: its last offset and MaxTimestamp.
func (b *Broker) maxTimestamp(p *partition) (offset, ts int64) {
	hwm := p.log.HighWatermark()
	if hwm <= p.log.LogStartOffset() {
		return -1, -1
	}
	rr, err := p.log.Read(hwm-1, 1)
	if err != nil {
		return -1, -1
	}
	defer rr.Close()
	data, err := rr.Bytes()
	if err != nil {
		return -1, -1
	}
	// Walk to the last batch in the result: baseOffset(8) length(4) … lastOffsetDelta at
	// 23, maxTimestamp at 35 (RecordBatch v2 header).
	var base, last, maxTs int64 = -1, -1, -1
	for len(data) >= 61 {
		n := int(binary.BigEndian.Uint32(data[8:12])) + 12
		base = int64(binary.BigEndian.Uint64(data[0:8]))
		last = base + int64(int32(binary.BigEndian.Uint32(data[23:27])))
		maxTs = int64(binary.BigEndian.Uint64(data[35:43]))
		if n > len(data) {
			break
		}
		data = data[n:]
	}
	return last, maxTs
}
