package broker

// DescribeTransactions v0.
//
// Behaviour: each transactional id's state as the coordinator (txn.go) holds it: state
// name as Kafka's (Empty, Ongoing, PrepareCommit, …), timeout, start time of the
// current transaction (-1 in Empty), producer id and epoch, and the partitions of the
// transaction; an unknown id gets TRANSACTIONAL_ID_NOT_FOUND.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	tc := c.b.txns
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		if !c.allowedTxnID(kmsg.ACLOperationDescribe, id) {
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		m := tc.txns[id]
		if m == nil {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State, st.TimeoutMillis, st.ProducerID, st.ProducerEpoch = m.State, m.TimeoutMs, m.PID, m.Epoch
		st.StartTimestamp = m.StartMs
		if m.State == txnEmpty {
			st.StartTimestamp = -1
		}
		for _, topic := range sortedKeysOf(m.Parts) {
			t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			t.Topic, t.Partitions = topic, append([]int32(nil), m.Parts[topic]...)
			st.Topics = append(st.Topics, t)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
