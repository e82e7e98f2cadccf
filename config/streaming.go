package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Streaming configures the micro-batch engine and its built-in pipelines (events →
// ods_events/dwd_events/dlq_events, window counts → rt_window_counts).
type Streaming struct {
	Enabled bool `yaml:"enabled"`
	// BootstrapServers: empty means the built-in broker (broker.listen).
	BootstrapServers []string      `yaml:"bootstrap_servers"`
	BatchInterval    time.Duration `yaml:"batch_interval"`
	// MaxRecordsPerPartition caps one batch's offset range per partition.
	MaxRecordsPerPartition int64 `yaml:"max_records_per_partition"`
	// MaxRecordsPerBatch caps one batch's records in all, split across partitions by
	// lag (Spark's maxOffsetsPerTrigger); 0 = no cap.
	MaxRecordsPerBatch int64 `yaml:"max_records_per_batch"`
	// MinRecordsPerBatch delays an interval's batch while fewer new records are there
	// (Spark's minOffsetsPerTrigger), at most MaxTriggerDelay since the last batch; 0 =
	// every interval runs one. Fewer, larger files at low rates.
	MinRecordsPerBatch int64         `yaml:"min_records_per_batch"`
	MaxTriggerDelay    time.Duration `yaml:"max_trigger_delay"`
	// MaxRatePerPartition caps records/s per partition; 0 = unlimited.
	MaxRatePerPartition float64 `yaml:"max_rate_per_partition"`
	// Backpressure enables the PID rate estimator that keeps processing under the interval.
	Backpressure bool `yaml:"backpressure"`
	// StartingOffsets is where the partitions start when the pipeline starts from nothing:
	// earliest | latest | an RFC 3339 time (the first record at or after it) | Spark's
	// JSON of offsets per partition, {"events":{"0":23,"1":-2}} (-2 earliest, -1 latest).
	StartingOffsets string `yaml:"starting_offsets"`
	// FailOnDataLoss stops a pipeline when offsets it is to read are gone (deleted by
	// retention before they were read, or a topic recreated); false skips the gap with a
	// warning. As Spark's failOnDataLoss.
	FailOnDataLoss bool `yaml:"fail_on_data_loss"`
	// IsolationLevel: read_uncommitted (Kafka's default) | read_committed (topics written
	// by transactional producers: aborted records and markers are dropped).
	IsolationLevel string `yaml:"isolation_level"`
	// Group receives committed offsets so lag tools see progress; "" = none.
	Group string `yaml:"group"`
	// CheckpointDir holds one directory per pipeline; empty = data_dir/streaming.
	CheckpointDir string `yaml:"checkpoint_dir"`

	// The events pipeline: topics → ods_events, dwd_events, dlq_events.
	EventsEnabled bool     `yaml:"events_enabled"`
	EventsTopics  []string `yaml:"events_topics"`
	// EventsTopicPattern, when set, replaces EventsTopics: every topic whose whole name
	// the regular expression matches (Spark's subscribePattern), new ones included.
	EventsTopicPattern string `yaml:"events_topic_pattern"`
	// EventsFormat is the default line format: auto | jsonl | csv | taobao | movielens.
	EventsFormat string `yaml:"events_format"`
	// EventsFormats overrides the format per topic.
	EventsFormats map[string]StreamingFormat `yaml:"events_formats"`
	// DedupByEventID drops repeated event ids seen within DedupTTL.
	DedupByEventID bool          `yaml:"dedup_by_event_id"`
	DedupTTL       time.Duration `yaml:"dedup_ttl"`

	// Window counts: sliding event-time windows → rt_window_counts (late → rt_late_events).
	WindowEnabled         bool          `yaml:"window_enabled"`
	WindowLength          time.Duration `yaml:"window_length"`
	WindowSlide           time.Duration `yaml:"window_slide"`
	WindowAllowedLateness time.Duration `yaml:"window_allowed_lateness"`
	// WindowCountsTopic, when set, also receives each closed window's count as a JSON
	// record (at least once), for real-time consumers.
	WindowCountsTopic string `yaml:"window_counts_topic"`
}

// StreamingFormat is one topic's line format (see internal/event.Options).
type StreamingFormat struct {
	Format  string   `yaml:"format"`
	Columns []string `yaml:"columns"`
	Header  bool     `yaml:"header"`
	// Delimiter of csv fields: one character, or "tab"; empty = ",".
	Delimiter  string            `yaml:"delimiter"`
	Mapping    map[string]string `yaml:"mapping"`
	TimeLayout string            `yaml:"time_layout"`
}

// TopicPattern is EventsTopicPattern compiled; nil when unset.
func (s *Streaming) TopicPattern() (*regexp.Regexp, error) {
	if s.EventsTopicPattern == "" {
		return nil, nil
	}
	return regexp.Compile(s.EventsTopicPattern)
}

var streamingFormats = []string{"auto", "jsonl", "csv", "taobao", "movielens"}

func (s *Streaming) validate(ch *check) {
	ch.positive("batch_interval", int64(s.BatchInterval))
	ch.positive("max_records_per_partition", s.MaxRecordsPerPartition)
	if s.MaxRecordsPerBatch < 0 {
		ch.fail("max_records_per_batch", "must be >= 0, got %d", s.MaxRecordsPerBatch)
	}
	if s.MinRecordsPerBatch < 0 {
		ch.fail("min_records_per_batch", "must be >= 0, got %d", s.MinRecordsPerBatch)
	}
	ch.positive("max_trigger_delay", int64(s.MaxTriggerDelay))
	if s.MaxRatePerPartition < 0 {
		ch.fail("max_rate_per_partition", "must be >= 0, got %v", s.MaxRatePerPartition)
	}
	if s.StartingOffsets != "earliest" && s.StartingOffsets != "latest" {
		// The partitions' offsets are checked in full when the engine starts.
		var offs map[string]map[string]int64
		if _, err := time.Parse(time.RFC3339Nano, s.StartingOffsets); err != nil && json.Unmarshal([]byte(s.StartingOffsets), &offs) != nil {
			ch.fail("starting_offsets", `want earliest, latest, an RFC 3339 time such as 2026-11-26T00:00:00Z, or offsets per partition such as {"events":{"0":23,"1":-2}}, got %q`, s.StartingOffsets)
		}
	}
	if s.EventsEnabled && len(s.EventsTopics) == 0 && s.EventsTopicPattern == "" {
		ch.fail("events_topics", "must name at least one topic (or set events_topic_pattern)")
	}
	if _, err := s.TopicPattern(); err != nil {
		ch.fail("events_topic_pattern", "%v", err)
	}
	ch.oneOf("events_format", s.EventsFormat, streamingFormats...)
	ch.oneOf("isolation_level", s.IsolationLevel, "read_uncommitted", "read_committed")
	if s.DedupTTL <= 0 {
		ch.fail("dedup_ttl", "must be > 0, got %v", s.DedupTTL)
	}
	topics := make([]string, 0, len(s.EventsFormats))
	for t := range s.EventsFormats {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		f := s.EventsFormats[t]
		ch.oneOf(fmt.Sprintf("events_formats.%s.format", t), f.Format, streamingFormats...)
		if f.Format == "csv" && len(f.Columns) == 0 {
			ch.fail(fmt.Sprintf("events_formats.%s.columns", t), "csv needs declared columns (a header learnt from the stream would be lost on restart)")
		}
		if len([]rune(f.Delimiter)) > 1 && f.Delimiter != "tab" {
			ch.fail(fmt.Sprintf("events_formats.%s.delimiter", t), "must be one character or \"tab\", got %q", f.Delimiter)
		}
	}
	if s.WindowEnabled {
		switch {
		case s.WindowLength <= 0 || s.WindowSlide <= 0:
			ch.fail("window_length", "window_length and window_slide must be > 0")
		case s.WindowSlide > s.WindowLength || s.WindowLength%s.WindowSlide != 0:
			ch.fail("window_length", "must be a multiple of window_slide %v, got %v", s.WindowSlide, s.WindowLength)
		}
		if s.WindowAllowedLateness < 0 {
			ch.fail("window_allowed_lateness", "must be >= 0, got %v", s.WindowAllowedLateness)
		}
	}
}
