package streaming

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/streaming/internal/mem"
)

// source reads offset ranges as an ordinary Kafka client, so any Kafka-compatible
// cluster works: Metadata, ListOffsets and OffsetCommit through kafka-go's Client,
// records through Fetch requests of its own, one connection per partition to its
// leader (fetch.go).
type source struct {
	client    *kafka.Client
	transport *kafka.Transport
	brokers   []string

	security *kafkasec.Security
	clientID string

	mu sync.Mutex
	// fconns are the partitions' Fetch connections (fetch.go).
	fconns map[TopicPartition]*fetchConn
	// fetchBufs are the buffers the Fetch connections read responses into: one per
	// range read at once is kept between reads.
	fetchBufs *kafkasec.ResponseBuffers
	sub       subscription
	group     string
	// isolation is the Fetch and ListOffsets isolation level: read_uncommitted or
	// read_committed.
	isolation kafka.IsolationLevel
	// fetchMaxBytes bounds one Fetch response per partition.
	fetchMaxBytes int64
	parallel      int
	// avgRecordBytes (bytes per record seen so far, smoothed) sizes fetches so a small
	// range does not pull megabytes the batch will throw away.
	avgRecordBytes atomic.Int64
	// onLoss decides on a range's offsets that are gone: nil skips them, an error
	// fails the read. Unset, every gap fails it.
	onLoss func(DataLoss) error
	// topicIDs asks for topic ids, which kafka-go cannot (topicids.go).
	topicIDs *topicIDClient
}

// subscription is what a source reads: named topics, or every topic a pattern matches.
type subscription struct {
	topics []string
	// pattern is anchored: it matches whole names, as Java's Matcher.matches does for
	// Spark's subscribePattern.
	pattern *regexp.Regexp
}

func newSubscription(topics []string, pattern *regexp.Regexp) subscription {
	if pattern != nil {
		pattern = regexp.MustCompile(`^(?:` + pattern.String() + `)$`)
	}
	return subscription{topics, pattern}
}

// has says whether topic is subscribed to.
func (s subscription) has(topic string) bool {
	if s.pattern != nil {
		return s.pattern.MatchString(topic)
	}
	return slices.Contains(s.topics, topic)
}

func (s subscription) String() string {
	if s.pattern != nil {
		return "topics matching " + s.pattern.String()
	}
	return fmt.Sprint(s.topics)
}

// newSource reads brokers with security (nil: PLAINTEXT) for every connection: the
// client's, the partition connections' and the topic ids'.
func newSource(brokers []string, security *kafkasec.Security, sub subscription, group, clientID string) *source {
	tr := security.Transport(&kafka.Transport{ClientID: clientID, IdleTimeout: 30 * time.Second, MetadataTTL: 2 * time.Second})
	s := &source{
		client:        &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 30 * time.Second},
		transport:     tr,
		brokers:       brokers,
		security:      security,
		clientID:      clientID,
		fconns:        map[TopicPartition]*fetchConn{},
		sub:           sub,
		group:         group,
		fetchMaxBytes: 8 << 20,
		parallel:      8,
		topicIDs:      newTopicIDClient(brokers, security, clientID),
	}
	s.fetchBufs = kafkasec.NewResponseBuffers(s.parallel)
	return s
}

func (s *source) close() {
	s.mu.Lock()
	for tp, c := range s.fconns {
		c.Close()
		delete(s.fconns, tp)
	}
	s.mu.Unlock()
	s.transport.CloseIdleConnections()
	s.topicIDs.close()
}

// partitions lists the partitions of the source topics.
func (s *source) partitions(ctx context.Context) ([]TopicPartition, error) {
	// A pattern asks for every topic (a null topic list).
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: s.sub.topics})
	if err != nil {
		return nil, fmt.Errorf("cannot read metadata of %v: %w", s.sub, err)
	}
	var tps []TopicPartition
	for _, t := range md.Topics {
		if s.sub.pattern != nil && (t.Internal || !s.sub.has(t.Name)) {
			continue
		}
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

// offsetsAt returns, per partition of tps, the first offset whose record timestamp is at
// or after t (ListOffsets by time); partitions with none are missing.
func (s *source) offsetsAt(ctx context.Context, tps []TopicPartition, t time.Time) (map[TopicPartition]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range tps {
		req.Topics[tp.Topic] = append(req.Topics[tp.Topic], kafka.TimeOffsetOf(int(tp.Partition), t))
	}
	out := map[TopicPartition]int64{}
	if len(tps) == 0 {
		return out, nil
	}
	res, err := s.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("cannot list offsets at %v: %w", t, err)
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("cannot list offsets of %s/%d at %v: %w", topic, p.Partition, t, p.Error)
			}
			// kafka-go files a found offset under Offsets; none found (offset -1) is not there.
			for off := range p.Offsets {
				if off >= 0 {
					out[TopicPartition{topic, int32(p.Partition)}] = off
				}
			}
		}
	}
	return out, nil
}

// offsets returns the first (log start) and last (high watermark) offsets of tps.
func (s *source) offsets(ctx context.Context, tps []TopicPartition) (first, last map[TopicPartition]int64, err error) {
	// With read_committed, "last" is the last stable offset: a range never reaches into
	// an open transaction.
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: s.isolation}
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
// range order (offset order within a partition). Each partition's records are decoded
// straight into its slot of one slice sized for the whole batch: no per-partition
// slices to concatenate (a copy of every Record, and garbage, per batch). onRange, when
// set, is called with each range's records as soon as they are read (concurrently);
// the records stay where they are: what it keeps pointers to stays valid.
func (s *source) read(ctx context.Context, rs Ranges, onRange func(i int, recs []Record)) ([]Record, error) {
	return s.readWith(ctx, rs, onRange, s.readRange)
}

// readWith is read with readRange as the range reader.
func (s *source) readWith(ctx context.Context, rs Ranges, onRange func(i int, recs []Record), readRange func(context.Context, OffsetRange, []Record) (int, error)) ([]Record, error) {
	starts := make([]int64, len(rs)+1)
	for i, r := range rs {
		starts[i+1] = starts[i] + max(r.Count(), 0)
	}
	all := mem.Slab[Record](int(starts[len(rs)])) // filled record by record by the readers
	counts := make([]int, len(rs))
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
			counts[i], errs[i] = readRange(ctx, r, all[starts[i]:starts[i+1]:starts[i+1]])
			if errs[i] == nil && onRange != nil {
				onRange(i, all[starts[i]:starts[i]+int64(counts[i])])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Offsets missing inside a range (compaction, transaction markers) leave a partition
	// short of its slot: gather the records into a new slice (onRange may point into
	// this one).
	n := 0
	for _, c := range counts {
		n += c
	}
	if int64(n) == starts[len(rs)] {
		return all, nil
	}
	out := make([]Record, 0, n)
	for i, c := range counts {
		out = append(out, all[starts[i]:starts[i]+int64(c)]...)
	}
	return out, nil
}

// readRange fetches [r.From, r.Until) of one partition into dst (len r.Count()) and
// returns how many records it holds: readRangeFetch, at either isolation level. Offsets
// missing inside the range (compacted topics, transaction markers) are skipped; the
// range ends at r.Until.
func (s *source) readRange(ctx context.Context, r OffsetRange, dst []Record) (n int, err error) {
	return s.readRangeFetch(ctx, r, dst)
}

// afterEmptyFetch is where a range read goes on after a fetch at next gave none of the
// range's records while the partition's readable end (high watermark, or last stable
// offset) is end: one offset on when the range lies below the end (nothing is readable
// at next: a compaction gap, a marker), else where lost says (the offsets are gone).
func (s *source) afterEmptyFetch(ctx context.Context, r OffsetRange, next, end int64) (int64, error) {
	if end >= r.Until {
		return next + 1, nil
	}
	skipTo, err := s.lost(ctx, r, next)
	if err != nil {
		return 0, errors.Join(fmt.Errorf("cannot fetch %s: range ends at %d but the partition's end is %d", r.TP(), r.Until, end), err)
	}
	return skipTo, nil
}

// fetchSize is the MaxBytes of a fetch for the next n offsets of a range: a little more
// than they take at the average record size seen so far (record overhead in a batch is
// ~10-20 bytes), so a small range does not pull megabytes; fetchMaxBytes before any.
func (s *source) fetchSize(n int64) int64 {
	avg := s.avgRecordBytes.Load()
	if avg <= 0 {
		return s.fetchMaxBytes
	}
	want := n*(avg+24)*5/4 + 16<<10
	return min(max(want, 64<<10), s.fetchMaxBytes)
}

// noteRecordBytes folds a read of n records holding bytes of keys and values into the
// average record size.
func (s *source) noteRecordBytes(n int, bytes int64) {
	if n == 0 {
		return
	}
	avg := bytes / int64(n)
	if old := s.avgRecordBytes.Load(); old > 0 {
		avg = (old*3 + avg) / 4
	}
	s.avgRecordBytes.Store(max(avg, 1))
}

// lost checks, after a fetch of r at next found nothing, whether the offsets are gone:
// below the log start (retention) or above the end (the end moved back). It asks the
// leader (ListOffsets: a new leader whose high watermark is not settled answers with a
// retriable error) and reports the gap through onLoss. It returns the offset to go on
// from (r.Until when the rest of the range is gone); an error when the offsets are not
// gone (the fetch is retried) or onLoss refuses the gap.
func (s *source) lost(ctx context.Context, r OffsetRange, next int64) (int64, error) {
	tp := r.TP()
	firsts, lasts, err := s.offsets(ctx, []TopicPartition{tp})
	if err != nil {
		return 0, err
	}
	first, last := firsts[tp], lasts[tp]
	var d DataLoss
	switch {
	case next < first:
		d = DataLoss{TopicPartition: tp, From: next, Until: min(first, r.Until), Deleted: true}
	case last < r.Until && last <= next:
		d = DataLoss{TopicPartition: tp, From: last, Until: r.Until}
	default:
		return 0, fmt.Errorf("%s holds offsets %d-%d", tp, first, last-1)
	}
	if s.onLoss == nil {
		return 0, d
	}
	if err := s.onLoss(d); err != nil {
		return 0, err
	}
	return d.Until, nil
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
