// Package kafkasrc is the kafka source (Flume's KafkaSource): it consumes topics (a list
// or a regular expression) as a member of a consumer group and turns each record into
// an event, put into the channels in batches of BatchSize records or after
// BatchDuration, whichever comes first.
//
// Offsets are committed explicitly, and only after the batch is in the channels: a
// batch that could not be put (a full channel is waited for, a refused put retried) is
// not committed, and neither is one still in flight when the collector stops or dies,
// so the group's next member (or this source, restarted) reads it again. Delivery is
// at-least-once; duplicates come only from batches in flight at a stop, a crash or a
// rebalance, and each event carries an event_id (the record's own, or one made from
// topic, partition and offset) that stays the same when a record is read again.
//
// The consumer is segmentio/kafka-go's Reader with a GroupID (partitions shared
// among the group's members, the queue model; other groups read everything,
// publish-subscribe). kafka-go subscribes to a fixed topic list, so the source itself
// resolves Topics or TopicsRegex against the cluster's metadata, and starts the reader
// again (rejoining the group) when a matching topic appears or gains partitions.
package kafkasrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Options configure a Source.
type Options struct {
	// Brokers are bootstrap host:port addresses.
	Brokers []string
	// Security is TLS and SASL for the brokers; nil = PLAINTEXT.
	Security *kafkasec.Security
	// Topics are read unless TopicsRegex is set.
	Topics []string
	// TopicsRegex, when set, selects every topic whose whole name it matches (internal
	// topics excepted), rechecked every TopicRefresh.
	TopicsRegex *regexp.Regexp
	// GroupID is the consumer group; "" = "flume" (Flume's default).
	GroupID string
	// BatchSize is the most records of one put; 0 = 1000.
	BatchSize int
	// BatchDuration puts a batch that is not full this long after its first record;
	// 0 = 1s.
	BatchDuration time.Duration
	// TopicHeader, when set, is the header that gets the record's topic (Flume's
	// setTopicHeader/topicHeader; "topic" by default).
	TopicHeader string
	// StartLatest starts a partition the group has no committed offset for at its end
	// (Kafka's auto.offset.reset=latest, its default); else at its start (earliest).
	StartLatest bool
	// MaxLineBytes cuts longer values (with an error header); 0 = 1 MiB.
	MaxLineBytes int
	// MaxFetchBytes bounds one fetch from a partition; 0 = 10 MiB.
	MaxFetchBytes int
	// MaxWait is how long the broker may hold a fetch waiting for records; 0 = 500ms.
	MaxWait time.Duration
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout are the group membership
	// timings; 0 = 30s, 3s and 30s.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	// TopicRefresh is how often the topics are resolved again; 0 = 10s.
	TopicRefresh time.Duration
	// CommitTimeout bounds one offset commit; 0 = 10s.
	CommitTimeout time.Duration
	Log           *slog.Logger
	// C counts commits, commit_failures (the offsets are committed with the next batch
	// instead), put_failures (retried), fetch_errors and subscriptions (readers started).
	C *ingest.Counters
}

// DefaultOptions returns Flume's defaults.
func DefaultOptions() Options {
	return Options{GroupID: "flume", BatchSize: 1000, BatchDuration: time.Second, TopicHeader: ingest.HeaderTopic,
		StartLatest: true, MaxLineBytes: 1 << 20, MaxFetchBytes: 10 << 20, MaxWait: 500 * time.Millisecond,
		SessionTimeout: 30 * time.Second, HeartbeatInterval: 3 * time.Second, RebalanceTimeout: 30 * time.Second,
		TopicRefresh: 10 * time.Second, CommitTimeout: 10 * time.Second}
}

// Source is a kafka source.
type Source struct {
	name string
	opts Options
	out  *ingest.Processor
	tr   *kafka.Transport
	meta *kafka.Client
	// topicsRe is TopicsRegex anchored at both ends: a topic matches when the whole
	// name does, as in Kafka's pattern subscription (Java's Matcher.matches).
	topicsRe *regexp.Regexp

	// drain: Soft ends at Stop (read no more, put and commit the batch); Hard when
	// Stop's ctx does (a put waiting for room gives up: the batch is not committed).
	drain ingest.Drain

	// pending are the highest offsets put but not committed yet, by partition.
	pending map[partition]kafka.Message
}

type partition struct {
	topic string
	id    int
}

// New checks options; Start joins the group.
func New(name string, opts Options, out *ingest.Processor) (*Source, error) {
	d := DefaultOptions()
	if len(opts.Brokers) == 0 {
		return nil, fmt.Errorf("kafka source %s: no brokers", name)
	}
	if len(opts.Topics) == 0 && opts.TopicsRegex == nil {
		return nil, fmt.Errorf("kafka source %s: no topics", name)
	}
	if opts.GroupID == "" {
		opts.GroupID = d.GroupID
	}
	setDefault(&opts.BatchSize, d.BatchSize)
	setDefault(&opts.BatchDuration, d.BatchDuration)
	setDefault(&opts.MaxLineBytes, d.MaxLineBytes)
	setDefault(&opts.MaxFetchBytes, d.MaxFetchBytes)
	setDefault(&opts.MaxWait, d.MaxWait)
	setDefault(&opts.SessionTimeout, d.SessionTimeout)
	setDefault(&opts.HeartbeatInterval, d.HeartbeatInterval)
	setDefault(&opts.RebalanceTimeout, d.RebalanceTimeout)
	setDefault(&opts.TopicRefresh, d.TopicRefresh)
	setDefault(&opts.CommitTimeout, d.CommitTimeout)
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Security.Transport(&kafka.Transport{DialTimeout: 5 * time.Second, MetadataTTL: opts.TopicRefresh / 2, ClientID: "tagpipe-" + name})
	s := &Source{name: name, opts: opts, out: out, tr: tr,
		meta:    &kafka.Client{Addr: kafka.TCP(opts.Brokers...), Timeout: 5 * time.Second, Transport: tr},
		pending: map[partition]kafka.Message{}}
	if opts.TopicsRegex != nil {
		s.topicsRe = ingest.WholeMatch(opts.TopicsRegex)
	}
	return s, nil
}

// Reads reports whether a source with these options reads topic (once it exists).
func (o *Options) Reads(topic string) bool {
	if o.TopicsRegex != nil {
		return ingest.WholeMatch(o.TopicsRegex).MatchString(topic)
	}
	return slices.Contains(o.Topics, topic)
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

func (s *Source) Name() string { return s.name }

// Done is closed when the source has ended (Stop, or a channel that was closed).
func (s *Source) Done() <-chan struct{} { return s.drain.Done() }

// Start runs the source; it does not wait for the brokers (they may be down: the
// source retries).
func (s *Source) Start(context.Context) error {
	s.drain.Go(s.run)
	return nil
}

// Stop stops reading, puts the batch read so far (waiting for room until ctx ends) and
// commits it, then leaves the group. A batch that could not be put by then is not
// committed: it is read again at the next start. Safe twice and without Start.
func (s *Source) Stop(ctx context.Context) error {
	if err := s.drain.Stop(ctx); err != nil {
		return fmt.Errorf("kafka source %s: %w", s.name, err)
	}
	return nil
}

func (s *Source) run() {
	defer s.tr.CloseIdleConnections()
	backoff := ingest.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	var last string // what was logged last about resolving topics
	for s.drain.Soft().Err() == nil {
		sub, err := s.resolve()
		switch {
		case err != nil:
			if msg := err.Error(); msg != last {
				s.opts.Log.Warn("kafka source cannot read the topics' metadata, will retry", "source", s.name,
					"brokers", s.opts.Brokers, "err", err)
				last = msg
			}
			ingest.Sleep(s.drain.Soft(), backoff.Next())
			continue
		case len(sub) == 0:
			if last != "none" {
				s.opts.Log.Warn("kafka source: no topic to read yet, waiting for one", "source", s.name,
					"topics", s.opts.Topics, "topics_regex", s.opts.TopicsRegex)
				last = "none"
			}
			ingest.Sleep(s.drain.Soft(), s.opts.TopicRefresh)
			continue
		}
		backoff.Reset()
		last = ""
		if !s.consume(sub) {
			return
		}
	}
}

// subscription is the topics read and their partition counts.
type subscription map[string]int

func (s subscription) topics() []string {
	out := make([]string, 0, len(s))
	for t := range s {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// resolve returns the existing topics the source reads, with their partition counts.
func (s *Source) resolve() (subscription, error) {
	ctx, cancel := context.WithTimeout(s.drain.Soft(), 10*time.Second)
	defer cancel()
	md, err := s.meta.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, err
	}
	sub := subscription{}
	for _, t := range md.Topics {
		if t.Error != nil || t.Internal || len(t.Partitions) == 0 {
			continue
		}
		if s.topicsRe != nil {
			if !s.topicsRe.MatchString(t.Name) {
				continue
			}
		} else if !slices.Contains(s.opts.Topics, t.Name) {
			continue
		}
		sub[t.Name] = len(t.Partitions)
	}
	return sub, nil
}

func (s *Source) reader(sub subscription) *kafka.Reader {
	start := kafka.FirstOffset
	if s.opts.StartLatest {
		start = kafka.LastOffset
	}
	log := s.opts.Log
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           s.opts.Brokers,
		GroupID:           s.opts.GroupID,
		GroupTopics:       sub.topics(),
		Dialer:            s.opts.Security.Dialer(&kafka.Dialer{Timeout: 5 * time.Second, ClientID: "tagpipe-" + s.name}),
		MaxBytes:          s.opts.MaxFetchBytes,
		MaxWait:           s.opts.MaxWait,
		ReadLagInterval:   -1,
		HeartbeatInterval: s.opts.HeartbeatInterval,
		SessionTimeout:    s.opts.SessionTimeout,
		RebalanceTimeout:  s.opts.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       start,
		CommitInterval:    0, // CommitMessages is synchronous; nothing is committed otherwise
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka reader: "+fmt.Sprintf(msg, args...), "source", s.name)
		}),
	})
}

// consume reads sub with one reader until Stop (false) or until the topics changed
// (true: read them again with a new reader). Every batch read is put and committed
// before it returns, unless Stop's deadline passed or the channel was closed (false).
func (s *Source) consume(sub subscription) bool {
	r := s.reader(sub)
	s.opts.C.Add("subscriptions", 1)
	s.opts.Log.Info("kafka source reading", "source", s.name, "group", s.opts.GroupID, "topics", sub.topics())
	defer func() {
		if err := r.Close(); err != nil {
			s.opts.Log.Warn("kafka source: closing the reader", "source", s.name, "err", err)
		}
	}()
	// A fetching goroutine hands records over one at a time: when a batch is being put
	// it waits, and kafka-go keeps up the group membership meanwhile. A record it holds
	// when consume returns is not put, so it is not committed either.
	fctx, fcancel := context.WithCancel(context.Background())
	msgs := make(chan kafka.Message)
	fetched := make(chan struct{})
	go s.fetch(fctx, r, msgs, fetched)
	defer func() { fcancel(); <-fetched }()

	b := &batch{evs: make([]ingest.Event, 0, min(s.opts.BatchSize, 4096)), last: map[partition]kafka.Message{}}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time
	refresh := time.NewTicker(s.opts.TopicRefresh)
	defer refresh.Stop()
	flush := func() bool {
		timer.Stop()
		due = nil
		return s.flush(r, b)
	}
	for {
		select {
		case m := <-msgs:
			b.add(s, m)
			if len(b.evs) == 1 {
				timer.Reset(s.opts.BatchDuration)
				due = timer.C
			}
			if len(b.evs) >= s.opts.BatchSize && !flush() {
				return false
			}
		case <-due:
			if !flush() {
				return false
			}
		case <-refresh.C:
			now, err := s.resolve()
			if err != nil || equalSub(now, sub) {
				continue
			}
			s.opts.Log.Info("kafka source: the topics changed, joining the group again", "source", s.name,
				"was", sub, "now", now)
			return flush()
		case <-s.drain.Soft().Done():
			flush()
			return false
		}
	}
}

func equalSub(a, b subscription) bool {
	if len(a) != len(b) {
		return false
	}
	for t, n := range a {
		if b[t] != n {
			return false
		}
	}
	return true
}

// fetch hands records over until ctx ends.
func (s *Source) fetch(ctx context.Context, r *kafka.Reader, msgs chan<- kafka.Message, done chan<- struct{}) {
	defer close(done)
	backoff := ingest.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			s.opts.C.Add("fetch_errors", 1)
			s.opts.Log.Warn("kafka source cannot fetch, will retry", "source", s.name, "err", err)
			if !ingest.Sleep(ctx, backoff.Next()) {
				return
			}
			continue
		}
		backoff.Reset()
		select {
		case msgs <- m:
		case <-ctx.Done():
			return
		}
	}
}

// batch is the records read and not put yet: their events, and the last record of each
// partition (what a commit needs).
type batch struct {
	evs  []ingest.Event
	last map[partition]kafka.Message
	id   []byte
}

// add turns a record into an event: the value as body (cut at MaxLineBytes, with an
// error header), the record's headers, then topic (TopicHeader), partition, offset,
// timestamp (ms) where the record has no header of that name, as Flume, the key when
// the record has one, and event_id from topic, partition and offset unless the record
// carries one (a record written by tagpipe's kafka sink does).
func (b *batch) add(s *Source, m kafka.Message) {
	body := m.Value
	if body == nil {
		body = []byte{}
	}
	var bad string
	if len(body) > s.opts.MaxLineBytes {
		cut := bytes.Clone(body[:s.opts.MaxLineBytes])
		bad = ingest.Check(ingest.Line{Text: cut, Truncated: true, Full: int64(len(body))})
		body = cut
	}
	h := make(ingest.Headers, 0, len(m.Headers)+7)
	for _, x := range m.Headers {
		h = setOnce(h, x.Key, string(x.Value), true)
	}
	if s.opts.TopicHeader != "" {
		h = setOnce(h, s.opts.TopicHeader, m.Topic, false)
	}
	h = setOnce(h, "partition", strconv.Itoa(m.Partition), false)
	h = setOnce(h, "offset", strconv.FormatInt(m.Offset, 10), false)
	if !m.Time.IsZero() && m.Time.UnixMilli() >= 0 {
		h = setOnce(h, "timestamp", strconv.FormatInt(m.Time.UnixMilli(), 10), false)
	}
	if m.Key != nil {
		h = setOnce(h, ingest.HeaderKey, string(m.Key), true)
	}
	if _, ok := h.Lookup(ingest.HeaderEventID); !ok {
		b.id = append(append(b.id[:0], "kafka-"...), m.Topic...)
		b.id = strconv.AppendInt(append(b.id, '-'), int64(m.Partition), 10)
		b.id = strconv.AppendInt(append(b.id, '-'), m.Offset, 10)
		h = append(h, ingest.Header{Key: ingest.HeaderEventID, Value: string(b.id)})
	}
	if bad != "" {
		h = setOnce(h, ingest.HeaderError, bad, true)
	}
	b.evs = append(b.evs, ingest.Event{Body: body, Headers: h})
	m.Value, m.Key, m.Headers = nil, nil, nil // a commit needs topic, partition and offset only
	b.last[partition{m.Topic, m.Partition}] = m
}

// setOnce sets k to v, replacing an earlier value only when replace is set.
func setOnce(h ingest.Headers, k, v string, replace bool) ingest.Headers {
	for i := range h {
		if h[i].Key == k {
			if replace {
				h[i].Value = v
			}
			return h
		}
	}
	return append(h, ingest.Header{Key: k, Value: v})
}

// flush puts the batch and then commits its offsets (with those of earlier batches
// whose commit failed). It returns false when the batch could not be put: Stop's
// deadline passed or the channel is closed; the batch is then not committed, and the
// source must not read on.
func (s *Source) flush(r *kafka.Reader, b *batch) bool {
	if len(b.evs) > 0 {
		if !s.put(b.evs) {
			return false
		}
		for p, m := range b.last {
			s.pending[p] = m
		}
		clear(b.evs)
		b.evs = b.evs[:0]
		clear(b.last)
	}
	if len(s.pending) == 0 {
		return true
	}
	msgs := make([]kafka.Message, 0, len(s.pending))
	for _, m := range s.pending {
		msgs = append(msgs, m)
	}
	ctx, cancel := context.WithTimeout(s.drain.Hard(), s.opts.CommitTimeout)
	defer cancel()
	if err := r.CommitMessages(ctx, msgs...); err != nil {
		// The records are in the channel: a failed commit only means they may be read
		// again (after a rebalance or a restart). The next batch commits them too.
		s.opts.C.Add("commit_failures", 1)
		s.opts.Log.Warn("kafka source cannot commit offsets, will commit them with the next batch", "source", s.name,
			"partitions", len(msgs), "err", err)
		return true
	}
	s.opts.C.Add("commits", 1)
	clear(s.pending)
	return true
}

// put hands a batch to the channels, waiting for room and retrying refused puts (a
// full channel, a file channel on a nearly full disk); it gives up only when a channel
// is closed or Stop's deadline passed.
func (s *Source) put(evs []ingest.Event) bool {
	if err := s.out.PutRetrying(s.drain.Hard(), evs, s.opts.Log, "source", s.name); err != nil {
		s.opts.Log.Error("kafka source cannot put records into the channel; they are not committed and will be read again",
			"source", s.name, "records", len(evs), "err", err)
		return false
	}
	return true
}
