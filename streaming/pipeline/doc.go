// Package pipeline holds the platform's built-in streaming jobs, configured in
// tagpipe.yaml's streaming section:
//
//   - events: raw topic records → parsed with the topic's format (internal/event) →
//     ods_events (every record as received, with lineage), dwd_events (typed, deduplicated
//     by (topic, partition, offset) and by event id), dlq_events (lines that did not parse,
//     with the reason and the raw text); all partitioned by dt = event date (the record's
//     Kafka timestamp date when there is no event date).
//   - window counts: sliding event-time windows of events per action and per category →
//     rt_window_counts, with late events (below the watermark) → rt_late_events.
//
// Every table write is idempotent by batch id: a table's snapshot properties carry the
// pipeline name, the batch id, its batch time and its Kafka offset ranges
// (streaming.Prop*), and a batch the table already holds is skipped on replay. With the
// engine's checkpoint this gives exactly-once output. Without a checkpoint (deleted or
// lost) the engine resumes from the highest batch any table holds (Resume): ods/dwd/dlq
// stay exactly-once, but the dedup ids and the open window panes start empty, so
// rt_window_counts may get a second, partial row for windows that were open at the loss.
package pipeline
