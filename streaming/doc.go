// Package streaming is tagpipe's micro-batch engine, in the spirit of Spark Streaming's
// direct Kafka stream.
//
// It owns: offset ranges per topic-partition per batch (offsets.go), reading them with an
// ordinary Kafka client (source.go, segmentio/kafka-go for metadata and offsets, no
// broker-private API; records through Fetch requests of its own, fetch.go, their record
// batches walked in batches.go; topic ids, which kafka-go cannot ask for, through a
// Metadata request of its own: topicids.go), the
// typed DStream-like graph (stream.go: Map, Filter, FlatMap, KeyBy, ReduceByKey, Union,
// ForeachBatch; pairs.go: Spark's pair operations per batch — GroupByKey, CoGroup, Join,
// LeftOuterJoin, RightOuterJoin, FullOuterJoin, Count, CountByValue; partitions.go:
// MapPartitions, run on each partition as it is read;
// window.go: Window, ReduceByKeyAndWindow with an optional inverse; state.go:
// MapWithState with timeouts and delta checkpoints; eventtime.go: event-time windows with
// a watermark and a late-data output), the checkpoint directory (checkpoint.go: planned
// offsets, state snapshots and deltas, commits — Spark's offsets/ commits/ state/ logs),
// backpressure (ratecontrol.go: a fixed per-partition rate limit and a PID rate
// estimator), the scheduling loop — reading the next batch while the current one is
// processed — with graceful stop and per-batch metrics (engine.go, metrics.go), what to do
// when offsets are gone before they were read or a topic was recreated (dataloss.go), and
// a Kafka output (kafkasink.go: ToKafka, at least once).
//
// Exactly-once: batch N's offset ranges and batch time are written to the checkpoint
// before it is processed; outputs are idempotent by batch id (the warehouse sinks store the
// batch id and ranges in each table snapshot's properties and skip a batch they already
// hold); state and a commit marker are written after every output committed. A restart
// loads the last committed state and replays a planned-but-uncommitted batch with the same
// ranges and time, so every record reaches every output exactly once.
//
// The built-in pipelines (raw events → ods/dwd/dlq, event-time window counts) live in
// streaming/pipeline.
package streaming
