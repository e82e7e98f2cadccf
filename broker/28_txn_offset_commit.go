package broker

// TxnOffsetCommit v0–3.
//
// Behaviour: stages a consumer group's offsets in the transactional id's transaction
// (durably, with the transaction's state); they become the group's committed offsets
// when the transaction commits and are dropped when it aborts. Until then OffsetFetch
// does not show them, and with require_stable answers UNSTABLE_OFFSET_COMMIT for them.
// The group must have been added with AddOffsetsToTxn (else INVALID_TXN_STATE); v3's
// member fields are checked as OffsetCommit's (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID). Producer errors as AddPartitionsToTxn, except that a stale epoch
// is always INVALID_PRODUCER_EPOCH (Kafka has no PRODUCER_FENCED version of this API: its
// answer comes from the offsets log's producer epoch check).
//
// Version notes: v2 LeaderEpoch; v3 flexible, Generation/MemberID/InstanceID.

import (
	"math"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
)

func init() { register(28, 0, 3, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	// Authorization, as Kafka's handleTxnOffsetCommitRequest: WRITE on the transactional
	// id, READ on the group (each refuses every partition), READ on each topic.
	code, authCode := int16(0), int16(0)
	var denied map[string]bool
	switch {
	case !c.allowedTxnID(kmsg.ACLOperationWrite, req.TransactionalID):
		code, authCode = kerr.TransactionalIDAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code
	case !c.allowedGroup(kmsg.ACLOperationRead, req.Group):
		code, authCode = kerr.GroupAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code
	case req.Group == "":
		code = kerr.InvalidGroupID.Code
	default:
		denied = c.deniedTopics(kmsg.ACLOperationRead, namesOf(req.Topics, func(t *kmsg.TxnOffsetCommitRequestTopic) string { return t.Topic }))
	}
	if code == 0 && req.Version >= 3 {
		code = b.groups.CheckTxnMember(req.Group, req.MemberID, req.InstanceID, req.Generation)
	}
	tc := b.txns
	tc.mu.Lock()
	if code == 0 {
		var m *txnMeta
		m, code = tc.check(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Version, math.MaxInt16)
		switch {
		case code != 0:
		case m.State != txnOngoing || !m.hasGroup(req.Group):
			code = kerr.InvalidTxnState.Code
		default:
			staged := false
			for _, rt := range req.Topics {
				for _, rp := range rt.Partitions {
					if denied[rt.Topic] || b.partition(rt.Topic, rp.Partition) == nil || metadataTooLarge(rp.Metadata) {
						continue
					}
					if m.Offsets == nil {
						m.Offsets = map[string]map[string]map[int32]groups.Committed{}
					}
					g := m.Offsets[req.Group]
					if g == nil {
						g = map[string]map[int32]groups.Committed{}
						m.Offsets[strings.Clone(req.Group)] = g
					}
					putCommitted(g, rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata)
					staged = true
				}
			}
			if staged {
				if err := tc.persistLocked(m); err != nil {
					b.log.Error("cannot persist transaction state", "err", err)
					code = kerr.KafkaStorageError.Code
				}
			}
		}
	}
	tc.mu.Unlock()
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, b.commitCode(rt.Topic, rp.Partition, rp.Metadata, code)
			if authCode != 0 {
				sp.ErrorCode = authCode
			} else if denied[rt.Topic] {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
