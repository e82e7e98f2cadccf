package broker

// Produce v3–11.
//
// Behaviour: each partition's Records (exactly one RecordBatch v2, as Kafka requires
// since v3: a second batch is INVALID_RECORD) go to storage.Append as received: CRC32C
// checked (for a large request while it is read: produce_scan.go), base offset
// assigned, never decompressed or re-encoded, so every codec passes through — unless
// the topic's compression.type names a codec other than the batch's: then storage
// stores it re-encoded in that one (storage/validate.go: recode), as Kafka's
// LogValidator does.
// A request's partitions are appended one after the other, each under that partition's
// append lock only, so producers to different partitions run in parallel. acks=0 gets no
// response at all; acks=1 and acks=all are equivalent on one node (the ack follows the
// storage flush policy). Unknown topics are auto-created when enabled. Larger batches
// than max.message.bytes get MESSAGE_TOO_LARGE. A transactional produce (TransactionID
// set) must carry a transactional batch of the transactional id's current producer id
// and epoch, to a partition added to its Ongoing transaction (INVALID_TXN_STATE
// otherwise, INVALID_PRODUCER_EPOCH for a fenced producer); it is checked and appended
// while the transaction coordinator cannot end the transaction (txn.go). A
// transactional batch without a TransactionID is INVALID_RECORD. Topics
// with message.timestamp.type=LogAppendTime get the append time in the response; with
// CreateTime and message.timestamp.before.max.ms / after.max.ms set, a record timestamp
// out of bounds gets INVALID_TIMESTAMP with the refused records listed (v8+), as Kafka:
// such topics read every record of a batch, decompressing it (storage/validate.go).
//
// Version notes: v3 RecordBatch only; v5 LogStartOffset; v8 ErrorRecords/ErrorMessage;
// v9 flexible. Produce v0–2 (message sets v0/v1) are not served.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/storage"
)

func init() { register(0, 3, 11, handleProduce) }

func handleProduce(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	// Authorization, as Kafka's handleProduceRequest: WRITE on the transactional id (all
	// partitions refused without it), then WRITE on each topic.
	txnDenied := req.TransactionID != nil && !c.allowedTxnID(kmsg.ACLOperationWrite, *req.TransactionID)
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		var t *topic
		var terr *topicError
		denied := txnDenied || !c.allowedTopic(kmsg.ACLOperationWrite, rt.Topic)
		if !denied {
			t, terr = c.autoCreate(rt.Topic)
		}
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			switch {
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				b.failProduce(sp, kerr.InvalidRequiredAcks, "acks must be -1, 0 or 1")
			case txnDenied:
				b.failProduce(sp, kerr.TransactionalIDAuthorizationFailed, "")
			case denied:
				b.failProduce(sp, kerr.TopicAuthorizationFailed, "")
			case terr != nil:
				b.failProduce(sp, terr.err, terr.msg)
			case t == nil:
				b.failProduce(sp, kerr.UnknownTopicOrPartition, "")
			default:
				p := b.partition(rt.Topic, rp.Partition)
				if p == nil {
					b.failProduce(sp, kerr.UnknownTopicOrPartition, "")
					break
				}
				if isInternalTopic(rt.Topic) {
					// As Kafka's ReplicaManager.appendToLocalLog: only the coordinator writes it.
					b.failProduce(sp, kerr.InvalidTopicException, "Cannot append to internal topic "+rt.Topic)
					break
				}
				if req.Acks == -1 && b.minInsync(t) > 1 {
					b.failProduce(sp, kerr.NotEnoughReplicas, "min.insync.replicas is larger than this single broker's one replica")
					break
				}
				if p.unsynced.Load() {
					if err := b.syncTopics(p); err != nil {
						b.log.Error("cannot append to a partition topics.json may lose", "topic", p.topic, "partition", p.index, "err", err)
						b.failProduce(sp, kerr.KafkaStorageError, err.Error())
						break
					}
				}
				if req.TransactionID != nil {
					b.appendTxn(*req.TransactionID, p, rp.Records, sp, c.crcChecked(rp.Records))
					break
				}
				if storage.IsTransactionalBatch(rp.Records) {
					b.failProduce(sp, kerr.InvalidRecord, "a transactional batch needs the produce request's transactional id")
					break
				}
				b.append(p, rp.Records, sp, c.crcChecked(rp.Records))
			}
		}
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// appendTxn appends a transactional producer's batch after checking, with the
// transaction coordinator's lock held shared, that its producer id and epoch are the
// transactional id's and the partition is in its Ongoing transaction.
func (b *Broker) appendTxn(txnID string, p *partition, records []byte, sp *kmsg.ProduceResponseTopicPartition, crcChecked bool) {
	if len(records) < storage.BatchHeaderSize {
		b.failProduce(sp, kerr.CorruptMessage, "record batch too short")
		return
	}
	if !storage.IsTransactionalBatch(records) {
		b.failProduce(sp, kerr.InvalidRecord, "a transactional produce request carries a batch that is not transactional")
		return
	}
	pid, epoch := storage.BatchProducer(records)
	tc := b.txns
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	if code, msg := tc.checkProduceLocked(txnID, pid, epoch, p.topic, p.index); code != 0 {
		b.failProduce(sp, kerr.ErrorForCode(code).(*kerr.Error), msg)
		return
	}
	b.append(p, records, sp, crcChecked)
}

// failProduce answers one partition with an error.
func (b *Broker) failProduce(sp *kmsg.ProduceResponseTopicPartition, e *kerr.Error, msg string) {
	sp.ErrorCode = e.Code
	if msg != "" {
		sp.ErrorMessage = &msg
	}
	b.metrics.produceErrors.WithLabelValues(e.Message).Inc()
}

// append appends one partition's records and fills in its response. crcChecked says
// every batch's CRC was checked while the request was read (produce_scan.go).
//
// A request's partitions are appended one after the other on the connection's goroutine.
// Appending a large request's partitions on several goroutines at once (as this broker
// did) took less wall time per request but more CPU: a goroutine start and wake-ups for
// each request, and the Go runtime taking back the Ps of goroutines blocked in pwrite
// while the other P was busy too. With the CRCs checked during the read and the segment
// space allocated ahead, a partition's append is little more than its pwrite.
func (b *Broker) append(p *partition, records []byte, sp *kmsg.ProduceResponseTopicPartition, crcChecked bool) {
	fail := func(e *kerr.Error, msg string) { b.failProduce(sp, e, msg) }
	if len(records) == 0 {
		fail(kerr.InvalidRecord, "no records")
		return
	}
	if storage.MoreThanOneBatch(records) {
		fail(kerr.InvalidRecord, "Produce requests with version 3 and above are only allowed to contain exactly one record batch per partition")
		return
	}
	p.appendMu.Lock()
	var res storage.AppendResult
	var err error
	if crcChecked {
		res, err = p.log.AppendCRCChecked(records)
	} else {
		res, err = p.log.Append(records)
	}
	p.appendMu.Unlock()
	switch {
	case err == nil:
		b.metrics.producedRecords.Add(float64(res.LastOffset - res.BaseOffset + 1))
		b.metrics.producedBytes.Add(float64(len(records)))
	case errors.Is(err, storage.ErrDuplicateSequence):
		// An idempotent retry of a batch already written: success with the original offset.
	case errors.Is(err, storage.ErrCorruptMessage):
		fail(kerr.CorruptMessage, err.Error())
		return
	case errors.Is(err, storage.ErrBatchTooLarge):
		fail(kerr.MessageTooLarge, err.Error())
		return
	case errors.Is(err, storage.ErrInvalidRecord):
		fail(kerr.InvalidRecord, err.Error())
		return
	case errors.Is(err, storage.ErrInvalidTimestamp):
		// Kafka's answer (ReplicaManager, LogValidator): its message, one entry per
		// refused record.
		fail(kerr.InvalidTimestamp, "One or more records have been rejected due to invalid timestamp")
		var re *storage.RecordsError
		if errors.As(err, &re) {
			for _, r := range re.Records {
				er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
				er.RelativeOffset = r.Index
				msg := r.Message
				er.ErrorMessage = &msg
				sp.ErrorRecords = append(sp.ErrorRecords, er)
			}
		}
		return
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		fail(kerr.OutOfOrderSequenceNumber, err.Error())
		return
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		fail(kerr.InvalidProducerEpoch, err.Error())
		return
	case errors.Is(err, storage.ErrClosed):
		// The topic is being deleted: clients refresh metadata on this error.
		fail(kerr.NotLeaderForPartition, "partition is closing")
		return
	default:
		b.log.Error("append failed", "topic", p.topic, "partition", p.index, "err", err)
		fail(kerr.KafkaStorageError, err.Error())
		return
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTimeMs
	sp.LogStartOffset = res.LogStartOffset
}
