package broker

// EndTxn v0–3.
//
// Behaviour: commits or aborts the transactional id's Ongoing transaction: the decision
// is made durable, a control batch (Kafka's commit or abort marker) is appended to
// every partition of the transaction and, on commit, the offsets staged by
// TxnOffsetCommit become the group's committed offsets; the answer comes once all of it
// is written (so there is no window in which CONCURRENT_TRANSACTIONS is answered, except
// after a marker failed to be written: then the background check retries it). A retry
// of the same decision on a completed transaction succeeds; the other decision, or
// ending a transaction that never began, is INVALID_TXN_STATE. Producer id and epoch
// errors as AddPartitionsToTxn.
//
// Version notes: v2 PRODUCER_FENCED; v3 flexible. v4+ (KIP-890) is not served.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(26, 0, 3, handleEndTxn) }

func handleEndTxn(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if !c.allowedTxnID(kmsg.ACLOperationWrite, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	tc := b.txns
	tc.mu.Lock()
	defer tc.mu.Unlock()
	m, code := tc.check(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Version, 2)
	if code == 0 {
		switch {
		case m.State == txnOngoing:
			if err := tc.completeLocked(m, req.Commit); err != nil {
				b.log.Warn("cannot end a transaction; retrying in the background", "transactional_id", m.ID, "err", err)
				code = kerr.ConcurrentTransactions.Code
			}
		case m.State == txnCompleteCommit && req.Commit, m.State == txnCompleteAbort && !req.Commit:
			// A retry of a decision already carried out.
		default:
			code = kerr.InvalidTxnState.Code
		}
	}
	resp.ErrorCode = code
	return resp, nil
}
