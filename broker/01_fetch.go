package broker

// Fetch v4–12.
//
// Behaviour: for each partition, whole record batches from the one containing
// FetchOffset on (a fetch from the middle of a batch returns the whole batch), bytes as
// stored, never decoded: they are written from the segment file to the socket with
// sendfile (conn.frame splices them into the encoded response). PartitionMaxBytes and MaxBytes bound the answer, except that the
// first non-empty partition always gets at least one whole batch (KIP-74) so a batch
// larger than the limits cannot stall a consumer. When fewer than MinBytes are ready the
// request long-polls up to MaxWaitMillis and wakes as soon as any requested partition gets
// an append (storage's Notify), the connection closes or the broker stops. As in Kafka
// (ReplicaManager.fetchMessages), a partition with an error (unknown, offset out of range,
// leader epoch mismatch) makes the answer immediate: a consumer whose offset fell out of
// range learns it at once instead of after MaxWaitMillis; such a partition's high
// watermark, last stable offset and log start offset are -1, as Kafka answers them. A
// CurrentLeaderEpoch other than -1 is checked against the leader epoch 0 as ListOffsets
// does.
//
// Fetch sessions (KIP-227) from v7, as Kafka's FetchManager (fetch_session.go): a full
// fetch at epoch 0 opens a session, incremental fetches name only the partitions that
// changed and are answered only the partitions with news; the reading below is the
// same for both (an incremental fetch's request is rewritten to the session's
// partitions), so record sets still go by sendfile. Every partition reports its last
// stable offset (storage: the first offset of the earliest open transaction, else the
// high watermark). With IsolationLevel read_committed (1) only batches below it are
// returned (a consumer there is caught up and long-polls until a transaction ends),
// with the aborted transactions (producer id, first offset) that overlap the returned
// offsets, from the segments' transaction indexes, so the consumer drops their records;
// read_uncommitted is unchanged.
//
// Version notes: v4 LastStableOffset/AbortedTransactions; v5 LogStartOffset; v7
// sessions; v9 CurrentLeaderEpoch; v11 rack/PreferredReadReplica (-1); v12 flexible.
// v13+ (topic IDs) is not served.

import (
	"crypto/rand"
	"errors"
	"math"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/storage"
)

func init() { register(1, 4, 12, handleFetch) }

func handleFetch(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.FetchRequest)
	// Fetch sessions (KIP-227, fetch_session.go) from v7. An incremental fetch reads the
	// session's partitions: req.Topics becomes them.
	var fctx fetchContext
	if req.Version >= 7 {
		fctx = b.fetchSessions.newContext(req)
		if fctx.errCode != 0 {
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = fctx.errCode
			return resp, nil
		}
	}
	c.capFetchToQuota(req)
	// Authorization, once per request (as Kafka's handleFetchRequest): READ on each
	// topic; a follower's fetch (replica id >= 0) needs CLUSTER_ACTION on the cluster.
	var denied map[string]bool
	if c.b.acl != nil {
		names := namesOf(req.Topics, func(t *kmsg.FetchRequestTopic) string { return t.Topic })
		if req.ReplicaID >= 0 && !c.allowedCluster(kmsg.ACLOperationClusterAction) {
			denied = allNames(names)
		} else {
			denied = c.deniedTopics(kmsg.ACLOperationRead, names)
		}
	}
	var deadline time.Time
	if req.MaxWaitMillis > 0 {
		deadline = time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	}
	for {
		resp, n, wake, splices, failed := b.fetchOnce(req, denied)
		if n >= int(req.MinBytes) || n > 0 && req.MinBytes <= 0 || len(wake) == 0 || req.MaxWaitMillis <= 0 || failed {
			c.answer(b.fetchSessions.finish(fctx, req, resp), resp, splices)
			return resp, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			c.answer(b.fetchSessions.finish(fctx, req, resp), resp, splices)
			return resp, nil
		}
		for _, s := range splices {
			_ = s.rr.Close()
		}
		timer := time.NewTimer(wait)
		cases := make([]reflect.SelectCase, 0, 3+len(wake))
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.done)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(b.stop)})
		for _, ch := range wake {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		b.metrics.fetchWaiting.Inc()
		var chosen int
		c.wait(func() { chosen, _, _ = reflect.Select(cases) })
		b.metrics.fetchWaiting.Dec()
		timer.Stop()
		switch chosen {
		case 0:
			// Deadline: answer with whatever is there now (it may have grown meanwhile).
			resp, _, _, splices, _ = b.fetchOnce(req, denied)
			c.answer(b.fetchSessions.finish(fctx, req, resp), resp, splices)
			return resp, nil
		case 1, 2:
			return nil, errors.New("connection closing during fetch wait")
		}
		// New data on some partition: read again.
	}
}

// fetchOnce builds a response from what is in the logs now. It returns the response,
// the record bytes in it, the Notify channels of the partitions that could still get
// data (taken before reading, so an append between read and wait is not missed), the
// record sets (each partition's RecordBatches is a marker that conn.frame replaces with
// the file section, so records go from segment file to socket without a copy) and
// whether any partition has an error. Topics in denied are TOPIC_AUTHORIZATION_FAILED.
func (b *Broker) fetchOnce(req *kmsg.FetchRequest, denied map[string]bool) (*kmsg.FetchResponse, int, []<-chan struct{}, []splice, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0
	remaining := int64(req.MaxBytes)
	if req.Version < 3 || remaining <= 0 {
		remaining = 1<<31 - 1
	}
	total := 0
	var wake []<-chan struct{}
	var splices []splice
	failed := false
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			// Empty, not null: librdkafka rejects a null record set (MessageSetSize -1).
			sp.RecordBatches = []byte{}
			if denied[rt.Topic] {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				failed = true
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p := b.partition(rt.Topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				failed = true
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			wake = append(wake, p.log.Notify())
			stable := p.log.LastStableOffset()
			hwm, lso := p.log.HighWatermark(), p.log.LogStartOffset()
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hwm, stable, lso
			upTo := int64(math.MaxInt64)
			if req.IsolationLevel == 1 {
				upTo = stable
			}
			switch {
			case leaderEpochError(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = leaderEpochError(rp.CurrentLeaderEpoch)
			case rp.FetchOffset < lso || rp.FetchOffset > hwm:
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
			case rp.FetchOffset == hwm || rp.FetchOffset >= upTo:
				// Caught up: nothing to send yet.
			default:
				limit := int64(rp.PartitionMaxBytes)
				if limit > remaining {
					limit = remaining
				}
				if limit <= 0 && total > 0 {
					break
				}
				if limit <= 0 {
					limit = 1
				}
				rr, err := p.log.ReadUpTo(rp.FetchOffset, int32(limit), upTo)
				if errors.Is(err, storage.ErrOffsetOutOfRange) {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				if err != nil {
					b.log.Error("fetch read failed", "topic", p.topic, "partition", p.index, "offset", rp.FetchOffset, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
					break
				}
				// Only the first non-empty partition may exceed the limits (KIP-74).
				if rr.Len() == 0 || total > 0 && int64(rr.Len()) > limit {
					_ = rr.Close()
					break
				}
				if req.IsolationLevel == 1 {
					for _, a := range p.log.AbortedTxns(rp.FetchOffset, rr.NextOffset()) {
						at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
						at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
						sp.AbortedTransactions = append(sp.AbortedTransactions, at)
					}
				}
				marker := make([]byte, 16)
				_, _ = rand.Read(marker)
				sp.RecordBatches = marker
				splices = append(splices, splice{marker: marker, rr: rr})
				total += rr.Len()
				remaining -= int64(rr.Len())
			}
			if sp.ErrorCode != 0 {
				// As Kafka (ReplicaManager.createLogReadResult): a partition error carries no
				// offsets.
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				failed = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	b.metrics.fetchedBytes.Add(float64(total))
	return resp, total, wake, splices, failed
}

// answer hands the connection the record sets resp goes out with. When the session's
// finish may have dropped partitions (an epoch clash with a fetch that overtook this one
// answers none; a partition that fetch forgot is left out), only the splices whose
// markers resp still carries are kept and the others' reads closed: conn.frame looks
// for every splice's marker in the encoding.
func (c *conn) answer(pruned bool, resp *kmsg.FetchResponse, splices []splice) {
	if pruned {
		kept := splices[:0]
		for _, s := range splices {
			if carries(resp, s.marker) {
				kept = append(kept, s)
			} else {
				_ = s.rr.Close()
			}
		}
		splices = kept
	}
	c.splices = append(c.splices[:0], splices...)
}

// carries says whether one of resp's partitions answers the record set marker stands for.
func carries(resp *kmsg.FetchResponse, marker []byte) bool {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if len(p.RecordBatches) > 0 && &p.RecordBatches[0] == &marker[0] {
				return true
			}
		}
	}
	return false
}
