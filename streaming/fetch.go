package streaming

// The Fetch path: the range reader for read_committed and for any range in which a
// transaction marker shows up. kafka-go neither skips control batches nor exposes a
// Fetch response's aborted transactions through its Conn, and decoding through its
// Transport (protocol.RecordReader: varints read a byte at a time through io.Reader
// pages, every key and value copied out separately) cost twice the Conn path's CPU. So
// the engine sends Fetch itself, encoded and decoded with franz-go's kmsg over a
// connection of its own to the partition's leader (kafkasec.Conn: TLS and SASL as the
// rest of the source), and walks the record batches in the response bytes (batches.go).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

const (
	// Fetch versions the walker's client speaks: v4 brought isolation levels, the
	// last stable offset and aborted transactions; v12 is the first flexible one and
	// v13 names topics by id.
	minFetchVersion, maxFetchVersion = 4, 11
	// fetchTimeout bounds one Fetch round trip (its long poll is 500 ms).
	fetchTimeout = 30 * time.Second
)

// fetchConn is a connection to a partition's leader for Fetch requests, with the Fetch
// version agreed on it.
type fetchConn struct {
	*kafkasec.Conn
	version int16
}

// readRangeFetch is readRange over Fetch requests of the source's own (fetchConn):
// control batches (transaction markers) are never records, and with read_committed the
// fetch stops at the last stable offset and the batches of aborted transactions (the
// response lists them) are dropped, as Kafka's consumer does.
func (s *source) readRangeFetch(ctx context.Context, r OffsetRange, dst []Record) (n int, err error) {
	tp := r.TP()
	w := batchWalk{r: r, committed: s.isolation == kafka.ReadCommitted, next: r.From, out: dst[:0]}
	defer func() { s.noteRecordBytes(len(w.out), w.bytes) }()
	defer func() {
		if err != nil {
			s.dropFetchConn(tp) // a broken connection, or a moved leader, is redialled next time
		} else {
			s.releaseFetchConn(tp)
		}
	}()
	var grow int // a batch larger than the fetch size: ask for more, up to fetchMaxBytes
	for w.next < r.Until {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		maxBytes := min(s.fetchSize(r.Until-w.next)<<grow, s.fetchMaxBytes)
		p, err := s.fetch(ctx, tp, w.next, maxBytes)
		if err != nil {
			return 0, fmt.Errorf("cannot fetch %s at %d: %w", tp, w.next, err)
		}
		if p.ErrorCode != 0 {
			ferr := kerr.ErrorForCode(p.ErrorCode)
			// Out of range: below the log start or past its end. Anything else is retried
			// by the batch.
			if !errors.Is(ferr, kerr.OffsetOutOfRange) {
				return 0, fmt.Errorf("cannot fetch %s at %d: %w", tp, w.next, ferr)
			}
			skipTo, lerr := s.lost(ctx, r, w.next)
			if lerr != nil {
				return 0, errors.Join(fmt.Errorf("cannot fetch %s at %d: %w", tp, w.next, ferr), lerr)
			}
			w.next = skipTo
			continue
		}
		// The end a fetch can reach: the last stable offset with read_committed.
		end := p.HighWatermark
		if w.committed {
			end = p.LastStableOffset
		}
		before := w.next
		aborted := make([]abortedTxn, len(p.AbortedTransactions))
		for i, a := range p.AbortedTransactions {
			aborted[i] = abortedTxn{a.ProducerID, a.FirstOffset}
		}
		if err := w.add(p.RecordBatches, aborted); err != nil {
			return 0, fmt.Errorf("cannot read the records of %s at %d: %w", tp, before, err)
		}
		if w.beyond {
			break
		}
		if w.next == before {
			if w.partial {
				// Only part of a batch (or message) came: it is larger than the fetch
				// size, and the broker (before KIP-74) cut it.
				if maxBytes >= s.fetchMaxBytes {
					return 0, fmt.Errorf("cannot fetch %s at %d: a record batch is larger than %d bytes", tp, before, maxBytes)
				}
				grow++
				continue
			}
			if w.next, err = s.afterEmptyFetch(ctx, r, w.next, end); err != nil {
				return 0, err
			}
		}
		grow = 0
	}
	return len(w.out), nil
}

// fetch sends one Fetch for tp at offset (waiting up to 500ms for data) to its leader.
// The partition's RecordBatches are in the connection's buffer: valid until the next
// fetch of tp, or the end of the range read (releaseFetchConn).
func (s *source) fetch(ctx context.Context, tp TopicPartition, offset, maxBytes int64) (*kmsg.FetchResponseTopicPartition, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	c, err := s.fetchConn(ctx, tp)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = c.version
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, int32(maxBytes)
	req.IsolationLevel = int8(s.isolation)
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = tp.Topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = tp.Partition, offset, int32(maxBytes)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrFetchResponse()
	if err := c.RoundTrip(ctx, req, resp); err != nil {
		return nil, err
	}
	if resp.ErrorCode != 0 {
		return nil, kerr.ErrorForCode(resp.ErrorCode)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 ||
		resp.Topics[0].Topic != tp.Topic || resp.Topics[0].Partitions[0].Partition != tp.Partition {
		return nil, errors.New("the fetch response is not for the partition asked")
	}
	return &resp.Topics[0].Partitions[0], nil
}

// fetchConn returns the Fetch connection of tp, dialling its leader (from the cluster's
// metadata) if there is none.
func (s *source) fetchConn(ctx context.Context, tp TopicPartition) (*fetchConn, error) {
	s.mu.Lock()
	c := s.fconns[tp]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	addr, err := s.leader(ctx, tp)
	if err != nil {
		return nil, err
	}
	kc, err := s.security.Dial(ctx, addr, s.clientID)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s, the leader of %s: %w", addr, tp, err)
	}
	c = &fetchConn{Conn: kc}
	if c.version, err = fetchVersion(ctx, kc); err != nil {
		kc.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	// The walker copies what it keeps of a response (batches.go): its bytes can be
	// read over by the next one.
	kc.UseBuffers(s.fetchBufs)
	s.mu.Lock()
	s.fconns[tp] = c
	s.mu.Unlock()
	return c, nil
}

// leader returns the address of tp's leader.
func (s *source) leader(ctx context.Context, tp TopicPartition) (string, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{tp.Topic}})
	if err != nil {
		return "", fmt.Errorf("cannot find the leader of %s: %w", tp, err)
	}
	for _, t := range md.Topics {
		if t.Name != tp.Topic {
			continue
		}
		if t.Error != nil {
			return "", fmt.Errorf("cannot find the leader of %s: %w", tp, t.Error)
		}
		for _, p := range t.Partitions {
			if int32(p.ID) != tp.Partition {
				continue
			}
			if p.Error != nil {
				return "", fmt.Errorf("cannot find the leader of %s: %w", tp, p.Error)
			}
			if p.Leader.Host == "" {
				return "", fmt.Errorf("%s has no leader", tp)
			}
			return net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), nil
		}
	}
	return "", fmt.Errorf("cannot find the leader of %s: not in the metadata", tp)
}

// fetchVersion asks the broker (ApiVersions v0) for the highest Fetch version in
// [minFetchVersion, maxFetchVersion] both sides speak.
func fetchVersion(ctx context.Context, c *kafkasec.Conn) (int16, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.RoundTrip(ctx, req, resp); err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("ApiVersions: %w", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey != kmsg.Fetch.Int16() {
			continue
		}
		v := min(k.MaxVersion, maxFetchVersion)
		if v < minFetchVersion || v < k.MinVersion {
			return 0, fmt.Errorf("the broker speaks Fetch v%d-v%d, not v%d-v%d (Kafka 0.11+)", k.MinVersion, k.MaxVersion, minFetchVersion, maxFetchVersion)
		}
		return v, nil
	}
	return 0, errors.New("the broker does not list Fetch in ApiVersions")
}

// releaseFetchConn hands the last response's buffer of tp's Fetch connection back,
// for the next range read to reuse.
func (s *source) releaseFetchConn(tp TopicPartition) {
	s.mu.Lock()
	c := s.fconns[tp]
	s.mu.Unlock()
	if c != nil {
		c.Release()
	}
}

func (s *source) dropFetchConn(tp TopicPartition) {
	s.mu.Lock()
	c := s.fconns[tp]
	delete(s.fconns, tp)
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
