// Package channel holds the collector's channels: Memory (bounded, lost on crash) and
// File (a write-ahead log with checkpoints, fsync per committed put, bounded by bytes,
// refusing intake when the disk is nearly full). Both implement ingest.Channel with
// Flume's transaction semantics: an event leaves the channel only when the take that
// holds it commits; a rollback puts it back at the head, in order.
//
// The file channel's on-disk format is described in FORMAT.md.
package channel
