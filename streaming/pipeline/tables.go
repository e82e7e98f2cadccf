package pipeline

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tagpipe/tagpipe/warehouse"
)

// Table names written by the built-in pipelines.
const (
	TableODS          = "ods_events"
	TableDWD          = "dwd_events"
	TableDLQ          = "dlq_events"
	TableWindowCounts = "rt_window_counts"
	TableLate         = "rt_late_events"
)

var (
	tsType  = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	str     = arrow.BinaryTypes.String
	i32     = arrow.PrimitiveTypes.Int32
	i64     = arrow.PrimitiveTypes.Int64
	f64     = arrow.PrimitiveTypes.Float64
	boolean = arrow.FixedWidthTypes.Boolean
	strMap  = arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	f       = warehouse.Field
	req     = warehouse.RequiredField
)

func lineage() []arrow.Field {
	return []arrow.Field{
		req("topic", str, "Kafka topic the record was read from"),
		req("partition", i32, "Kafka partition"),
		req("offset", i64, "Kafka offset"),
	}
}

// ODSSchema: every record as received.
var ODSSchema = arrow.NewSchema(append([]arrow.Field{
	req("dt", str, "day (UTC) the record reached Kafka: its Kafka timestamp, or the batch time when it has none (dwd_events is partitioned by event day)"),
}, append(lineage(),
	f("key", str, "Kafka record key"),
	req("raw", str, "the record value as received"),
	f("kafka_time", tsType, "Kafka record timestamp"),
	req("ingest_time", tsType, "batch time of the micro-batch that stored the row"),
	f("source", str, "where the line came from (file path or peer), from the record headers"),
	req("format", str, "format the line was parsed with"),
	req("parsed", boolean, "whether the line parsed (false: see dlq_events)"),
)...), nil)

// DWDSchema: typed, deduplicated events (DESIGN.md data model).
var DWDSchema = arrow.NewSchema([]arrow.Field{
	req("dt", str, "event date (UTC)"),
	f("event_id", str, "producer-given event id, when the line had one"),
	req("user_id", str, "user id"),
	f("item_id", str, "item id"),
	req("action", str, "behaviour: pv, fav, cart, buy, rate, …"),
	req("event_time", tsType, "when the event happened"),
	f("value", f64, "rating, price or quantity"),
	f("category", str, "item category carried by the event"),
	f("props", strMap, "other fields of the line"),
	req("topic", str, "Kafka topic"),
	req("partition", i32, "Kafka partition"),
	req("offset", i64, "Kafka offset"),
	req("ingest_time", tsType, "batch time of the micro-batch that stored the row"),
	f("source", str, "file path or peer the line came from"),
}, nil)

// DLQSchema: lines that did not parse.
var DLQSchema = arrow.NewSchema(append([]arrow.Field{
	req("dt", str, "the record's Kafka timestamp date (UTC)"),
}, append(lineage(),
	req("raw", str, "the record value as received"),
	req("reason", str, "why it did not parse"),
	req("format", str, "format it was parsed with"),
	f("kafka_time", tsType, "Kafka record timestamp"),
	req("ingest_time", tsType, "batch time of the micro-batch that stored the row"),
	f("source", str, "file path or peer the line came from"),
)...), nil)

// WindowCountsSchema: closed event-time windows.
var WindowCountsSchema = arrow.NewSchema([]arrow.Field{
	req("dt", str, "window start date (UTC)"),
	req("window_start", tsType, "window start (inclusive)"),
	req("window_end", tsType, "window end (exclusive)"),
	req("dimension", str, "action or category"),
	req("key", str, "the action or category value"),
	req("events", i64, "events in the window"),
}, nil)

// LateSchema: events that arrived below the watermark.
var LateSchema = arrow.NewSchema(append([]arrow.Field{
	req("dt", str, "event date (UTC)"),
}, append(lineage(),
	req("user_id", str, "user id"),
	f("item_id", str, "item id"),
	req("action", str, "behaviour"),
	f("category", str, "category"),
	req("event_time", tsType, "event time"),
	req("watermark", tsType, "watermark the event fell below"),
	req("ingest_time", tsType, "batch time"),
)...), nil)
