package config

import "time"

// Broker configures the built-in Kafka-protocol broker. Per-topic settings
// (retention.ms, …) default to these values and can be changed per topic with
// `tagpipe topics alter`.
type Broker struct {
	// Enabled runs the built-in broker in `tagpipe up`; false means use bootstrap_servers.
	Enabled bool `yaml:"enabled"`
	// Listen is the Kafka protocol listener.
	Listen string `yaml:"listen"`
	// AdvertisedHost/Port are what Metadata tells clients to connect to; empty/0 = listen's.
	AdvertisedHost string `yaml:"advertised_host"`
	AdvertisedPort int    `yaml:"advertised_port"`
	// NodeID is this broker's id in Metadata.
	NodeID int32 `yaml:"node_id"`
	// AutoCreateTopics creates unknown topics on Metadata/Produce with DefaultPartitions.
	AutoCreateTopics  bool  `yaml:"auto_create_topics"`
	DefaultPartitions int32 `yaml:"default_partitions"`
	// RetentionMS / RetentionBytes: -1 = unlimited (Kafka's log.retention.ms/bytes).
	RetentionMS    int64 `yaml:"retention_ms"`
	RetentionBytes int64 `yaml:"retention_bytes"`
	SegmentBytes   int64 `yaml:"segment_bytes"`
	SegmentMS      int64 `yaml:"segment_ms"`
	// CompressionType is the topics' default compression.type: producer (batches as
	// produced), uncompressed, gzip, snappy, lz4 or zstd (re-encoded on append).
	CompressionType string `yaml:"compression_type"`
	// MaxMessageBytes is the largest record batch accepted (Kafka's message.max.bytes).
	MaxMessageBytes int32 `yaml:"max_message_bytes"`
	// Flush is "os" (ack after write to the page cache), "always" (fsync before ack) or a
	// duration like "1s" (fsync at that interval).
	Flush string `yaml:"flush"`
	// RetentionCheckInterval is how often retention runs (log.retention.check.interval.ms).
	RetentionCheckInterval time.Duration `yaml:"retention_check_interval"`
	// LogCleanerBackoff is how often the log cleaner looks for compacted topics'
	// partitions to clean (log.cleaner.backoff.ms).
	LogCleanerBackoff time.Duration `yaml:"log_cleaner_backoff"`
	// MaxRequestBytes refuses larger request frames before reading them
	// (socket.request.max.bytes).
	MaxRequestBytes int32 `yaml:"max_request_bytes"`
	// GroupInitialRebalanceDelay holds a new group's first rebalance open for members
	// starting together (group.initial.rebalance.delay.ms).
	GroupInitialRebalanceDelay time.Duration `yaml:"group_initial_rebalance_delay"`
	// GroupMinSessionTimeout / GroupMaxSessionTimeout bound consumers' session timeouts.
	GroupMinSessionTimeout time.Duration `yaml:"group_min_session_timeout"`
	GroupMaxSessionTimeout time.Duration `yaml:"group_max_session_timeout"`
	// OffsetsRetention drops the committed offsets of a group empty this long
	// (offsets.retention.minutes).
	OffsetsRetention time.Duration `yaml:"offsets_retention"`
	// TransactionMaxTimeout is the largest transaction timeout a transactional producer
	// may ask for (transaction.max.timeout.ms).
	TransactionMaxTimeout time.Duration `yaml:"transaction_max_timeout"`
	// TransactionAbortInterval is how often transactions past their timeout are aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	TransactionAbortInterval time.Duration `yaml:"transaction_abort_interval"`
	// TransactionalIDExpiration forgets a transactional id whose last transaction ended
	// this long ago (transactional.id.expiration.ms).
	TransactionalIDExpiration time.Duration `yaml:"transactional_id_expiration"`
}

func (b *Broker) validate(ch *check) {
	ch.addr("listen", b.Listen)
	ch.positive("default_partitions", int64(b.DefaultPartitions))
	ch.positive("segment_bytes", b.SegmentBytes)
	ch.positive("segment_ms", b.SegmentMS)
	ch.positive("max_message_bytes", int64(b.MaxMessageBytes))
	ch.positive("retention_check_interval", int64(b.RetentionCheckInterval))
	ch.positive("log_cleaner_backoff", int64(b.LogCleanerBackoff))
	ch.positive("max_request_bytes", int64(b.MaxRequestBytes))
	ch.positive("group_min_session_timeout", int64(b.GroupMinSessionTimeout))
	ch.positive("offsets_retention", int64(b.OffsetsRetention))
	ch.positive("transaction_max_timeout", int64(b.TransactionMaxTimeout))
	ch.positive("transaction_abort_interval", int64(b.TransactionAbortInterval))
	ch.positive("transactional_id_expiration", int64(b.TransactionalIDExpiration))
	if b.GroupMaxSessionTimeout < b.GroupMinSessionTimeout {
		ch.fail("group_max_session_timeout", "must be >= group_min_session_timeout (%v), got %v", b.GroupMinSessionTimeout, b.GroupMaxSessionTimeout)
	}
	if b.GroupInitialRebalanceDelay < 0 {
		ch.fail("group_initial_rebalance_delay", "must be >= 0, got %v", b.GroupInitialRebalanceDelay)
	}
	if b.AdvertisedPort < 0 || b.AdvertisedPort > 65535 {
		ch.fail("advertised_port", "must be 0 (the listen port) or a port number, got %d", b.AdvertisedPort)
	}
	// broker/storage's compression.type names (config imports no room).
	ch.oneOf("compression_type", b.CompressionType, "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
	if b.RetentionMS < -1 || b.RetentionMS == 0 {
		ch.fail("retention_ms", "must be > 0 or -1 (unlimited), got %d", b.RetentionMS)
	}
	if b.RetentionBytes < -1 || b.RetentionBytes == 0 {
		ch.fail("retention_bytes", "must be > 0 or -1 (unlimited), got %d", b.RetentionBytes)
	}
	if b.Flush != "os" && b.Flush != "always" {
		if d, err := time.ParseDuration(b.Flush); err != nil || d <= 0 {
			ch.fail("flush", `must be "os", "always" or a duration like "1s", got %q`, b.Flush)
		}
	}
}
