package broker

// ListTransactions v0–2.
//
// Behaviour: the transactional ids the coordinator (txn.go) knows, with their producer
// id and state, filtered as Kafka filters them: by state (names Kafka does not know are
// listed back in UnknownStateFilters), by producer id, (v1+) by running longer than
// DurationFilterMillis (transactions in progress only), (v2+) by a regular expression
// on the transactional id (RE2, as Kafka's; a bad one gets INVALID_REGULAR_EXPRESSION).
//
// Version notes: v1 DurationFilterMillis; v2 TransactionalIDPattern.

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(66, 0, 2, handleListTransactions) }

// kafkaTxnStates are the state names Kafka's coordinator knows.
var kafkaTxnStates = map[string]bool{
	txnEmpty: true, txnOngoing: true, txnPrepareCommit: true, txnPrepareAbort: true,
	txnCompleteCommit: true, txnCompleteAbort: true, "Dead": true, "PrepareEpochFence": true,
}

func handleListTransactions(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var re *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	states := map[string]bool{}
	for _, s := range req.StateFilters {
		if !kafkaTxnStates[s] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
		states[s] = true
	}
	pids := map[int64]bool{}
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	nowMs := b.now().UnixMilli()
	tc := b.txns
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	for _, m := range tc.sorted() {
		inProgress := m.State == txnOngoing || m.State == txnPrepareCommit || m.State == txnPrepareAbort
		switch {
		case len(states) > 0 && !states[m.State],
			len(pids) > 0 && !pids[m.PID],
			req.Version >= 1 && req.DurationFilterMillis >= 0 && (!inProgress || nowMs-m.StartMs < req.DurationFilterMillis),
			re != nil && !re.MatchString(m.ID),
			!c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, m.ID):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = m.ID, m.PID, m.State
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
