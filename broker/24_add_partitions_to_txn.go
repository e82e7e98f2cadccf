package broker

// AddPartitionsToTxn v0–3 (the client versions; v4+ is the brokers' batched form).
//
// Behaviour: adds partitions to the transactional id's transaction, which becomes
// Ongoing (its timeout starts), durably (txn.go) before answering. A producer id that is
// not the transactional id's gets INVALID_PRODUCER_ID_MAPPING, an old epoch
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2), a transaction being completed
// CONCURRENT_TRANSACTIONS; an unknown partition UNKNOWN_TOPIC_OR_PARTITION and then the
// others OPERATION_NOT_ATTEMPTED, as Kafka answers.
//
// Version notes: v2 PRODUCER_FENCED; v3 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(24, 0, 3, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	// Authorization, as Kafka's handleAddPartitionsToTxnRequest: WRITE on the
	// transactional id (else every partition is refused), WRITE on each topic (an
	// unauthorized topic's partitions TOPIC_AUTHORIZATION_FAILED, as unknown ones below).
	if !c.allowedTxnID(kmsg.ACLOperationWrite, req.TransactionalID) {
		return addPartitionsAnswer(req, func(string, int32) int16 { return kerr.TransactionalIDAuthorizationFailed.Code }), nil
	}
	denied := c.deniedTopics(kmsg.ACLOperationWrite, namesOf(req.Topics, func(t *kmsg.AddPartitionsToTxnRequestTopic) string { return t.Topic }))
	code := int16(0)
	unknown := len(denied) > 0
	for _, rt := range req.Topics {
		for _, p := range rt.Partitions {
			if b.partition(rt.Topic, p) == nil {
				unknown = true
			}
		}
	}
	tc := b.txns
	tc.mu.Lock()
	m, code := tc.check(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Version, 2)
	if code == 0 && !unknown {
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				if !m.hasPart(rt.Topic, p) {
					if m.Parts == nil {
						m.Parts = map[string][]int32{}
					}
					m.Parts[rt.Topic] = append(m.Parts[rt.Topic], p)
				}
			}
		}
		code = tc.beginLocked(m)
	}
	tc.mu.Unlock()
	return addPartitionsAnswer(req, func(topic string, p int32) int16 {
		switch {
		case code != 0 || !unknown:
			return code
		case denied[topic]:
			return kerr.TopicAuthorizationFailed.Code
		case b.partition(topic, p) == nil:
			return kerr.UnknownTopicOrPartition.Code
		}
		return kerr.OperationNotAttempted.Code
	}), nil
}

// addPartitionsAnswer answers each partition of req with code's answer for it.
func addPartitionsAnswer(req *kmsg.AddPartitionsToTxnRequest, code func(topic string, p int32) int16) *kmsg.AddPartitionsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, code(rt.Topic, p)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
