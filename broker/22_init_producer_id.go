package broker

// InitProducerID v0–4.
//
// Behaviour: a producer without a transactional id gets a new producer id with epoch 0.
// Ids are never handed out twice, even across crashes: they come from blocks of 1000
// reserved in Dir/producer_ids (rewritten atomically once per block). A v3+ request that
// names an id this broker issued and its current epoch (KIP-360: the client bumps its
// epoch after a sequence error) gets the same id with the next epoch, or a new id when
// the epoch would overflow; an id it never issued gets a new id (Kafka answers every
// idempotent producer with a new id and epoch 0: TransactionCoordinator
// .handleInitProducerId). The per-partition sequence checks (duplicate batch: success with
// the original offsets; gap: OUT_OF_ORDER_SEQUENCE_NUMBER; old epoch:
// INVALID_PRODUCER_EPOCH) live in storage. A transactional id goes to the transaction
// coordinator (txn.go): a producer id per transactional id, its epoch bumped by every
// call (a previous producer is fenced and its Ongoing transaction aborted first), a
// transaction.timeout.ms above TransactionMaxTimeout or not positive refused with
// INVALID_TRANSACTION_TIMEOUT, a v3+ request naming another producer id or epoch with
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4); an empty id gets INVALID_REQUEST,
// as Kafka does.
//
// Version notes: v1 same as v0; v2 flexible; v3 ProducerID/ProducerEpoch in the request;
// v4 same as v3.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tagpipe/tagpipe/broker/acl"
	"github.com/tagpipe/tagpipe/internal/fsutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(22, 0, 4, handleInitProducerID) }

const producerIDBlock = 1000

func handleInitProducerID(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" { // Kafka's TransactionCoordinator: INVALID_REQUEST
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp, nil
		}
		if !c.allowedTxnID(kmsg.ACLOperationWrite, *req.TransactionalID) {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = b.txns.initProducerID(strings.Clone(*req.TransactionalID),
			req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch, req.Version)
		return resp, nil
	}
	// An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some
	// topic (KIP-679), as Kafka's handleInitProducerIdRequest.
	if b.acl != nil && !c.allowedSilently(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, acl.ClusterName) &&
		!c.allowedAnyTopic(kmsg.ACLOperationWrite) {
		b.metrics.authorizationFailures.Inc()
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	// An id this broker never issued (the client got it from another broker, or sent
	// garbage) gets a new id, as Kafka answers every idempotent producer.
	if req.Version >= 3 && req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerID < b.pidNext {
		if req.ProducerEpoch < math.MaxInt16-1 {
			resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
			return resp, nil
		}
	}
	id, err := b.nextProducerIDLocked()
	if err != nil {
		b.log.Error("cannot allocate a producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// nextProducerIDLocked hands out the next id, reserving a new block on disk first when
// the current one is used up. b.pidMu must be held.
func (b *Broker) nextProducerIDLocked() (int64, error) {
	if b.pidNext >= b.pidLimit {
		path := filepath.Join(b.opts.Dir, "producer_ids")
		start := int64(0)
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			start, err = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cannot parse %q: %w", path, err)
			}
		case !os.IsNotExist(err):
			return 0, fmt.Errorf("cannot read %q: %w", path, err)
		}
		start = max(start, b.pidNext)
		if err := fsutil.WriteFile(path, []byte(strconv.FormatInt(start+producerIDBlock, 10)+"\n")); err != nil {
			return 0, err
		}
		b.pidNext, b.pidLimit = start, start+producerIDBlock
	}
	id := b.pidNext
	b.pidNext++
	return id, nil
}

// loadProducerIDs starts allocation after every id a previous run may have handed out.
func (b *Broker) loadProducerIDs() error {
	path := filepath.Join(b.opts.Dir, "producer_ids")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %q: %w", path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("cannot parse %q: %q", path, data)
	}
	b.pidNext, b.pidLimit = n, n
	return nil
}
