package broker

// DescribeProducers v0 (KIP-664: kafka-transactions.sh describe-producers).
//
// Behaviour: each partition named gets the idempotent and transactional producers its
// log knows (storage's producer state: those not expired by producer.id.expiration.ms),
// as Kafka's ReplicaManager.activeProducerState answers them: producer id and epoch, the
// last sequence of the current epoch (-1 when a marker moved the epoch on), the last
// timestamp (the last batch's max timestamp or the last marker's timestamp, whichever
// came last), the coordinator epoch of the producer's last marker here (-1 if none) and
// the first offset of its open transaction here (-1 if none). A topic or partition that
// does not exist gets UNKNOWN_TOPIC_OR_PARTITION for that partition, as Kafka answers
// one it has no metadata for. Partitions are answered in the order named, every copy of
// a repeated one. The producer state is read under its own lock only (no broker lock).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(61, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		denied := !c.allowedTopic(kmsg.ACLOperationRead, rt.Topic) // as Kafka's handleDescribeProducersRequest
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p := b.partition(rt.Topic, idx)
			if p == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, pi := range p.log.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pi.ProducerID, int32(pi.ProducerEpoch)
				ap.LastSequence, ap.LastTimestamp = pi.LastSequence, pi.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordinatorEpoch, pi.CurrentTxnStartOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
