package broker

// AddOffsetsToTxn v0–3.
//
// Behaviour: adds a consumer group to the transactional id's transaction (which becomes
// Ongoing), so that TxnOffsetCommit may stage its offsets; errors as AddPartitionsToTxn.
//
// Version notes: v2 PRODUCER_FENCED; v3 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(25, 0, 3, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !c.allowedTxnID(kmsg.ACLOperationWrite, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	case !c.allowedGroup(kmsg.ACLOperationRead, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	tc := c.b.txns
	tc.mu.Lock()
	defer tc.mu.Unlock()
	m, code := tc.check(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Version, 2)
	if code == 0 {
		if !m.hasGroup(req.Group) {
			m.Groups = append(m.Groups, req.Group)
		}
		code = tc.beginLocked(m)
	}
	resp.ErrorCode = code
	return resp, nil
}
