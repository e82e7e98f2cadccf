package broker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/storage"
)

// configDef is one topic config a client may describe or set, with the broker-level
// setting it falls back to (its synonym) and Kafka's built-in default.
type configDef struct {
	name       string
	brokerName string // broker-level synonym (log.retention.ms …)
	typ        kmsg.ConfigType
	doc        string
	// kafkaDefault is Kafka's own default, reported with source DEFAULT_CONFIG.
	kafkaDefault string
	// brokerValue is this broker's setting (Options), source STATIC_BROKER_CONFIG when it
	// differs from kafkaDefault.
	brokerValue func(o *Options) string
	// check validates a new value.
	check func(v string) error
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

func floatRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		if !(f >= lo && f <= hi) { // NaN too
			return fmt.Errorf("%v is out of range [%v, %v]", f, lo, hi)
		}
		return nil
	}
}

// cleanupPolicy parses cleanup.policy: a comma-separated list of delete and compact.
func cleanupPolicy(v string) (del, compact bool, err error) {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			del = true
		case "compact":
			compact = true
		default:
			return false, false, fmt.Errorf("%q is not a cleanup policy (delete, compact or both)", strings.TrimSpace(p))
		}
	}
	return del, compact, nil
}

// cleanupPolicy is a topic's effective cleanup.policy (validated when it was set).
func (b *Broker) cleanupPolicy(overrides map[string]string) (del, compact bool) {
	cp, _ := b.effective(findConfig("cleanup.policy"), overrides)
	del, compact, _ = cleanupPolicy(cp)
	return del, compact
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not supported here (supported: %s)", v, strings.Join(allowed, ", "))
	}
}

const maxInt32 = 1<<31 - 1
const maxInt64 = 1<<63 - 1

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// topicConfigs are the topic configs this broker knows, sorted by name.
var topicConfigs = []configDef{
	{name: "cleanup.policy", brokerName: "log.cleanup.policy", typ: kmsg.ConfigTypeList, kafkaDefault: "delete",
		doc: "delete: closed segments go by retention.ms and retention.bytes; compact: the log cleaner keeps the newest record per key " +
			"(records must have keys; retention by time and size only with delete too); delete,compact: both.",
		brokerValue: func(*Options) string { return "delete" },
		check:       func(v string) error { _, _, err := cleanupPolicy(v); return err }},
	{name: "compression.gzip.level", brokerName: "compression.gzip.level", typ: kmsg.ConfigTypeInt, kafkaDefault: "-1",
		doc:         "The gzip level batches are re-encoded at with compression.type=gzip: 1 (fastest) to 9 (smallest); -1 the default, 6 (as Kafka's).",
		brokerValue: func(*Options) string { return "-1" }, check: intRange(storage.MinGzipLevel, storage.MaxGzipLevel)},
	{name: "compression.lz4.level", brokerName: "compression.lz4.level", typ: kmsg.ConfigTypeInt, kafkaDefault: "9",
		doc: "The lz4 level batches are re-encoded at with compression.type=lz4: 1 the fast compressor, 2 to 17 high compression " +
			"(pierrec/lz4's nine levels, two Kafka levels each).",
		brokerValue: func(*Options) string { return "9" }, check: intRange(storage.MinLZ4Level, storage.MaxLZ4Level)},
	{name: "compression.type", brokerName: "compression.type", typ: kmsg.ConfigTypeString, kafkaDefault: "producer",
		doc: "The codec batches are stored in: producer keeps each batch as the producer compressed it; uncompressed, gzip, snappy, " +
			"lz4 or zstd store a batch in another codec re-encoded in this one (a batch already in it as sent).",
		brokerValue: func(o *Options) string { return o.CompressionType }, check: oneOf(storage.CompressionNames()...)},
	{name: "compression.zstd.level", brokerName: "compression.zstd.level", typ: kmsg.ConfigTypeInt, kafkaDefault: "3",
		doc: "The zstd level batches are re-encoded at with compression.type=zstd: negative (faster) to 22 (smallest); " +
			"klauspost/zstd's four speeds cover them (1: fastest, 2–3: default, 4–7: better, 8 and up: best).",
		brokerValue: func(*Options) string { return "3" }, check: intRange(storage.MinZstdLevel, storage.MaxZstdLevel)},
	{name: "delete.retention.ms", brokerName: "log.cleaner.delete.retention.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "86400000",
		doc:         "A compacted topic keeps a tombstone (a null value) this long, so consumers catching up see the delete.",
		brokerValue: func(*Options) string { return "86400000" }, check: intRange(0, maxInt64)},
	{name: "index.interval.bytes", brokerName: "log.index.interval.bytes", typ: kmsg.ConfigTypeInt, kafkaDefault: "4096",
		doc:         "Bytes of log between two entries of the sparse offset index.",
		brokerValue: func(*Options) string { return "4096" }, check: intRange(0, maxInt32)},
	{name: "max.compaction.lag.ms", brokerName: "log.cleaner.max.compaction.lag.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc:         "The log cleaner compacts a partition whose oldest uncompacted record is this old, whatever min.cleanable.dirty.ratio says.",
		brokerValue: func(*Options) string { return "9223372036854775807" }, check: intRange(1, maxInt64)},
	{name: "max.message.bytes", brokerName: "message.max.bytes", typ: kmsg.ConfigTypeInt, kafkaDefault: "1048588",
		doc:         "Largest record batch the broker accepts for this topic.",
		brokerValue: func(o *Options) string { return i64(int64(o.MaxMessageBytes)) }, check: intRange(0, maxInt32)},
	{name: "message.timestamp.after.max.ms", brokerName: "log.message.timestamp.after.max.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc: "With CreateTime, a produce is refused (INVALID_TIMESTAMP) when a record's timestamp is more than this ahead of the broker's clock; " +
			"at the default (no bound) message.timestamp.difference.max.ms applies.",
		brokerValue: func(*Options) string { return "9223372036854775807" }, check: intRange(0, maxInt64)},
	{name: "message.timestamp.before.max.ms", brokerName: "log.message.timestamp.before.max.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc: "With CreateTime, a produce is refused (INVALID_TIMESTAMP) when a record's timestamp is more than this behind the broker's clock; " +
			"at the default (no bound) message.timestamp.difference.max.ms applies.",
		brokerValue: func(*Options) string { return "9223372036854775807" }, check: intRange(0, maxInt64)},
	{name: "message.timestamp.difference.max.ms", brokerName: "log.message.timestamp.difference.max.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc: "[DEPRECATED since Kafka 3.6] Both bounds at once, for message.timestamp.before.max.ms and message.timestamp.after.max.ms " +
			"that are at their default.",
		brokerValue: func(*Options) string { return "9223372036854775807" }, check: intRange(0, maxInt64)},
	{name: "message.timestamp.type", brokerName: "log.message.timestamp.type", typ: kmsg.ConfigTypeString, kafkaDefault: "CreateTime",
		doc:         "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's append time.",
		brokerValue: func(*Options) string { return "CreateTime" }, check: oneOf("CreateTime", "LogAppendTime")},
	{name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", typ: kmsg.ConfigTypeDouble, kafkaDefault: "0.5",
		doc:         "The log cleaner compacts a partition when the closed bytes written since its last pass are at least this share of all closed bytes.",
		brokerValue: func(*Options) string { return "0.5" }, check: floatRange(0, 1)},
	{name: "min.compaction.lag.ms", brokerName: "log.cleaner.min.compaction.lag.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "0",
		doc:         "Segments holding records younger than this are not compacted yet.",
		brokerValue: func(*Options) string { return "0" }, check: intRange(0, maxInt64)},
	{name: "min.insync.replicas", brokerName: "min.insync.replicas", typ: kmsg.ConfigTypeInt, kafkaDefault: "1",
		doc:         "acks=all produce fails with NOT_ENOUGH_REPLICAS when fewer replicas are in sync; a single node has one.",
		brokerValue: func(*Options) string { return "1" }, check: intRange(1, maxInt32)},
	{name: "retention.bytes", brokerName: "log.retention.bytes", typ: kmsg.ConfigTypeLong, kafkaDefault: "-1",
		doc:         "Per partition: the oldest closed segments are deleted while the log is larger; -1 = unlimited.",
		brokerValue: func(o *Options) string { return i64(o.RetentionBytes) }, check: intRange(-1, maxInt64)},
	{name: "retention.ms", brokerName: "log.retention.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "604800000",
		doc:         "Closed segments whose newest record is older than this are deleted; -1 = forever.",
		brokerValue: func(o *Options) string { return i64(o.RetentionMS) }, check: intRange(-1, maxInt64)},
	{name: "segment.bytes", brokerName: "log.segment.bytes", typ: kmsg.ConfigTypeInt, kafkaDefault: "1073741824",
		doc:         "A new segment is rolled when the active one would grow past this size.",
		brokerValue: func(o *Options) string { return i64(o.SegmentBytes) }, check: intRange(14, maxInt32)},
	{name: "segment.ms", brokerName: "log.roll.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "604800000",
		doc:         "A new segment is rolled when the active one is older than this.",
		brokerValue: func(o *Options) string { return i64(o.SegmentMS) }, check: intRange(1, maxInt64)},
}

func findConfig(name string) *configDef {
	i := sort.Search(len(topicConfigs), func(i int) bool { return topicConfigs[i].name >= name })
	if i < len(topicConfigs) && topicConfigs[i].name == name {
		return &topicConfigs[i]
	}
	return nil
}

// validateConfig checks one topic config name and value.
func validateConfig(name string, value *string) error {
	d := findConfig(name)
	if d == nil {
		return fmt.Errorf("unknown topic config %q", name)
	}
	if value == nil {
		return fmt.Errorf("config %q: null value", name)
	}
	if err := d.check(*value); err != nil {
		return fmt.Errorf("config %q: %w", name, err)
	}
	return nil
}

// effective returns a config's value for a topic with overrides, and its source.
func (b *Broker) effective(d *configDef, overrides map[string]string) (string, kmsg.ConfigSource) {
	if v, ok := overrides[d.name]; ok {
		return v, kmsg.ConfigSourceDynamicTopicConfig
	}
	if v := d.brokerValue(&b.opts); v != d.kafkaDefault {
		return v, kmsg.ConfigSourceStaticBrokerConfig
	}
	return d.kafkaDefault, kmsg.ConfigSourceDefaultConfig
}

// storageOptions turns the broker defaults plus a topic's overrides into storage.Options.
func (b *Broker) storageOptions(overrides map[string]string) storage.Options {
	so := storage.DefaultOptions()
	get := func(name string) int64 {
		v, _ := b.effective(findConfig(name), overrides)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			panic("BUG: validated config " + name + " is not an integer: " + v)
		}
		return n
	}
	so.RetentionMS = get("retention.ms")
	so.RetentionBytes = get("retention.bytes")
	so.SegmentBytes = get("segment.bytes")
	so.SegmentMS = get("segment.ms")
	so.MaxMessageBytes = int32(get("max.message.bytes"))
	so.IndexIntervalBytes = int(get("index.interval.bytes"))
	ct, _ := b.effective(findConfig("compression.type"), overrides)
	so.Compression, _ = storage.ParseCompression(ct) // validated
	switch so.Compression {
	case storage.CompressionGzip:
		so.CompressionLevel = int(get("compression.gzip.level"))
	case storage.CompressionLZ4:
		so.CompressionLevel = int(get("compression.lz4.level"))
	case storage.CompressionZstd:
		so.CompressionLevel = int(get("compression.zstd.level"))
	}
	tt, _ := b.effective(findConfig("message.timestamp.type"), overrides)
	so.LogAppendTime = tt == "LogAppendTime"
	// As Kafka's LogConfig (3.6–3.9): a bound at its default (no bound) takes the
	// deprecated message.timestamp.difference.max.ms instead.
	before, after := get("message.timestamp.before.max.ms"), get("message.timestamp.after.max.ms")
	if diff := get("message.timestamp.difference.max.ms"); diff != maxInt64 {
		if before == maxInt64 {
			before = diff
		}
		if after == maxInt64 {
			after = diff
		}
	}
	if !so.LogAppendTime && (before != maxInt64 || after != maxInt64) {
		so.TimestampBounds = &storage.TimestampBounds{BeforeMS: before, AfterMS: after}
	}
	del, compact := b.cleanupPolicy(overrides)
	so.Compact = compact
	if !del { // compact alone: Kafka applies no time or size retention
		so.RetentionMS, so.RetentionBytes = -1, -1
	}
	// storage reads 0 as its default (a day); 1 ms is as good as 0 on a millisecond clock.
	so.DeleteRetentionMS = max(get("delete.retention.ms"), 1)
	so.MinCompactionLagMS = get("min.compaction.lag.ms")
	if lag := get("max.compaction.lag.ms"); lag != maxInt64 { // Kafka's "no bound"
		so.MaxCompactionLagMS = lag
	}
	ratio, _ := b.effective(findConfig("min.cleanable.dirty.ratio"), overrides)
	so.MinCleanableDirtyRatio, _ = strconv.ParseFloat(ratio, 64) // validated
	so.Flush = b.opts.Flush
	so.Now = b.opts.Now
	so.Logger = b.opts.Logger
	return so
}

func (b *Broker) minInsync(t *topic) int64 {
	b.mu.RLock()
	v, ok := t.configs["min.insync.replicas"]
	b.mu.RUnlock()
	if !ok {
		return 1
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

type configResource struct {
	typ  kmsg.ConfigResourceType
	name string
}

// nullValues is Kafka's answer (ConfigAdminManager) to AlterConfigs and
// IncrementalAlterConfigs setting configs to null.
func nullValues(names []string) *topicError {
	return terr(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(names, ", "))
}
