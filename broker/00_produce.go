package broker

// Produce v3–11.
//
// Behaviour: each partition's Records (one or more RecordBatch v2) go to storage.Append
// as received: CRC32C checked, base offset assigned, never decompressed or re-encoded, so
// every codec passes through. Partitions of a topic are appended under that partition's
// append lock only, so producers to different partitions run in parallel. acks=0 gets no
// response at all; acks=1 and acks=all are equivalent on one node (the ack follows the
// storage flush policy). Unknown topics are auto-created when enabled. Larger batches
// than max.message.bytes get MESSAGE_TOO_LARGE; transactional produce is refused. Topics
// with message.timestamp.type=LogAppendTime get the append time in the response.
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
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		t, terr := b.autoCreate(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			fail := func(e *kerr.Error, msg string) {
				sp.ErrorCode = e.Code
				if msg != "" {
					sp.ErrorMessage = &msg
				}
				b.metrics.produceErrors.WithLabelValues(e.Message).Inc()
			}
			switch {
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				fail(kerr.InvalidRequiredAcks, "acks must be -1, 0 or 1")
			case req.TransactionID != nil:
				fail(kerr.TransactionalIDAuthorizationFailed, "transactions are not supported by this broker")
			case terr != nil:
				fail(terr.err, terr.msg)
			case t == nil:
				fail(kerr.UnknownTopicOrPartition, "")
			default:
				p := b.partition(rt.Topic, rp.Partition)
				if p == nil {
					fail(kerr.UnknownTopicOrPartition, "")
					break
				}
				if req.Acks == -1 && b.minInsync(t) > 1 {
					fail(kerr.NotEnoughReplicas, "min.insync.replicas is larger than this single broker's one replica")
					break
				}
				b.append(p, rp.Records, &sp, fail)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

func (b *Broker) append(p *partition, records []byte, sp *kmsg.ProduceResponseTopicPartition, fail func(*kerr.Error, string)) {
	if len(records) == 0 {
		fail(kerr.InvalidRecord, "no records")
		return
	}
	p.appendMu.Lock()
	res, err := p.log.Append(records)
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
