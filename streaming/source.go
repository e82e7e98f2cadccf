package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// source reads offset ranges with kafka-go's Client, an ordinary Kafka client: Metadata,
// ListOffsets, Fetch and OffsetCommit only, so any Kafka-compatible cluster works.
type source struct {
	client    *kafka.Client
	transport *kafka.Transport
	topics    []string
	group     string
	// fetchMaxBytes bounds one Fetch response per partition.
	fetchMaxBytes int64
	parallel      int
	// avgRecordBytes (bytes per record seen so far, smoothed) sizes fetches so a small
	// range does not pull megabytes the batch will throw away.
	avgRecordBytes atomic.Int64
}

func newSource(brokers, topics []string, group, clientID string) *source {
	tr := &kafka.Transport{ClientID: clientID, IdleTimeout: 30 * time.Second, MetadataTTL: 2 * time.Second}
	return &source{
		client:        &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 30 * time.Second},
		transport:     tr,
		topics:        topics,
		group:         group,
		fetchMaxBytes: 8 << 20,
		parallel:      8,
	}
}

func (s *source) close() { s.transport.CloseIdleConnections() }

// partitions lists the partitions of the source topics.
func (s *source) partitions(ctx context.Context) ([]TopicPartition, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: s.topics})
	if err != nil {
		return nil, fmt.Errorf("cannot read metadata of %v: %w", s.topics, err)
	}
	var tps []TopicPartition
	for _, t := range md.Topics {
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) || errors.Is(t.Error, kafka.LeaderNotAvailable) {
				continue // not created yet: no partitions to read
			}
			return nil, fmt.Errorf("cannot read metadata of topic %q: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			tps = append(tps, TopicPartition{t.Name, int32(p.ID)})
		}
	}
	return tps, nil
}

// offsets returns the first (log start) and last (high watermark) offsets of tps.
func (s *source) offsets(ctx context.Context, tps []TopicPartition) (first, last map[TopicPartition]int64, err error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range tps {
		req.Topics[tp.Topic] = append(req.Topics[tp.Topic],
			kafka.FirstOffsetOf(int(tp.Partition)), kafka.LastOffsetOf(int(tp.Partition)))
	}
	first, last = map[TopicPartition]int64{}, map[TopicPartition]int64{}
	if len(tps) == 0 {
		return first, last, nil
	}
	res, err := s.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list offsets: %w", err)
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, nil, fmt.Errorf("cannot list offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			tp := TopicPartition{topic, int32(p.Partition)}
			first[tp], last[tp] = p.FirstOffset, p.LastOffset
		}
	}
	for _, tp := range tps {
		if _, ok := last[tp]; !ok {
			return nil, nil, fmt.Errorf("cannot list offsets of %s: missing from the response", tp)
		}
	}
	return first, last, nil
}

// read fetches every record of rs, partitions in parallel, and returns them grouped in
// range order (offset order within a partition).
func (s *source) read(ctx context.Context, rs Ranges) ([]Record, error) {
	parts := make([][]Record, len(rs))
	errs := make([]error, len(rs))
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	for i, r := range rs {
		if r.Count() <= 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			parts[i], errs[i] = s.readRange(ctx, r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]Record, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// readRange fetches [r.From, r.Until) of one partition. Offsets missing inside the range
// (compacted topics, transaction markers) are skipped; the range ends at r.Until.
func (s *source) readRange(ctx context.Context, r OffsetRange) ([]Record, error) {
	out := make([]Record, 0, r.Count())
	next := r.From
	var bytesRead int64
	defer func() {
		if len(out) > 0 {
			avg := bytesRead / int64(len(out))
			old := s.avgRecordBytes.Load()
			if old > 0 {
				avg = (old*3 + avg) / 4
			}
			s.avgRecordBytes.Store(max(avg, 1))
		}
	}()
	for next < r.Until {
		maxBytes := s.fetchMaxBytes
		if avg := s.avgRecordBytes.Load(); avg > 0 {
			// Record overhead in a batch is ~10-20 bytes; ask for a little more than needed.
			want := (r.Until-next)*(avg+24)*5/4 + 16<<10
			maxBytes = min(max(want, 64<<10), s.fetchMaxBytes)
		}
		res, err := s.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: r.Topic, Partition: int(r.Partition), Offset: next,
			MinBytes: 1, MaxBytes: maxBytes, MaxWait: 500 * time.Millisecond,
		})
		if err != nil {
			return nil, fmt.Errorf("cannot fetch %s/%d at %d: %w", r.Topic, r.Partition, next, err)
		}
		if res.Error != nil {
			return nil, fmt.Errorf("cannot fetch %s/%d at %d: %w", r.Topic, r.Partition, next, res.Error)
		}
		progressed := false
		for {
			rec, err := res.Records.ReadRecord()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("cannot decode records of %s/%d at %d: %w", r.Topic, r.Partition, next, err)
			}
			if rec.Offset < next || rec.Offset >= r.Until {
				drain(rec)
				continue
			}
			key, err := readBytes(rec.Key)
			if err != nil {
				return nil, err
			}
			val, err := readBytes(rec.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, Record{Topic: r.Topic, Partition: r.Partition, Offset: rec.Offset, Key: key, Value: val, Time: rec.Time})
			bytesRead += int64(len(key) + len(val))
			next = rec.Offset + 1
			progressed = true
		}
		if !progressed {
			if res.HighWatermark >= r.Until && res.HighWatermark > next {
				// Nothing readable below the high watermark at next (control records,
				// compaction gaps): the broker answered an empty set. Step over it.
				next++
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if res.HighWatermark < r.Until {
				return nil, fmt.Errorf("cannot fetch %s/%d: range ends at %d but the high watermark is %d (log truncated?)", r.Topic, r.Partition, r.Until, res.HighWatermark)
			}
		}
	}
	return out, nil
}

func readBytes(b interface {
	io.ReadCloser
	Len() int
}) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	out := make([]byte, b.Len())
	if _, err := io.ReadFull(b, out); err != nil {
		return nil, fmt.Errorf("cannot read record bytes: %w", err)
	}
	return out, nil
}

func drain(rec *kafka.Record) {
	if rec.Key != nil {
		rec.Key.Close()
	}
	if rec.Value != nil {
		rec.Value.Close()
	}
}

// commitGroup publishes the batch's end offsets to the consumer group so tools that show
// lag (kafka-consumer-groups, kadm) see the engine's progress. The warehouse holds the
// truth; this commit is informational and best effort.
func (s *source) commitGroup(ctx context.Context, ends map[TopicPartition]int64) error {
	if s.group == "" || len(ends) == 0 {
		return nil
	}
	req := &kafka.OffsetCommitRequest{GroupID: s.group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for tp, off := range ends {
		req.Topics[tp.Topic] = append(req.Topics[tp.Topic], kafka.OffsetCommit{Partition: int(tp.Partition), Offset: off})
	}
	res, err := s.client.OffsetCommit(ctx, req)
	if err != nil {
		return fmt.Errorf("cannot commit offsets of group %q: %w", s.group, err)
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("cannot commit offset of %s/%d for group %q: %w", topic, p.Partition, s.group, p.Error)
			}
		}
	}
	return nil
}
