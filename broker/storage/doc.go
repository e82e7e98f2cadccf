// Package storage owns one partition's log on disk: a directory of segments
// (<baseoffset>.log with a sparse .index and .timeindex), the RecordBatch v2 header
// checks done on append (magic, length, CRC32C; records are read, decompressing, only
// where a compacted topic, timestamp bounds or a compression.type to re-encode a batch
// in ask for it: validate.go), offset
// assignment, reads that hand whole batches to the network without decoding them,
// rolling, retention, DeleteRecords, crash recovery of a torn tail, the idempotent
// producer state (last five batch sequences per producer id, snapshotted next to the
// segments) and each partition's side of transactions (txn.go: open transactions, the
// last stable offset, commit/abort markers, the aborted transactions of each segment in
// a .txnindex). The byte layout of every file is documented in broker/FORMAT.md.
//
// Concurrency: Append, AppendMarker, DeleteRecordsBefore, EnforceRetention, SetOptions, Flush and
// Close are serialised by Log.writeMu (the writer lock). Readers (Read, offsets, Size,
// OffsetForTimestamp) take Log.mu for reading only to pick a segment and its committed
// size; they never wait for disk writes or fsyncs. Compact runs under Log.compactMu and
// takes writeMu only to read its options and to swap a cleaned segment in, never while
// it holds mu. Lock order: compactMu, writeMu, mu.
package storage
