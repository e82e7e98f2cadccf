// Package groups is the broker's classic consumer-group coordinator: membership and the
// rebalance state machine (Empty → PreparingRebalance → CompletingRebalance → Stable),
// session and rebalance timeouts, and committed offsets, which are durable in an
// append-only commit log (offsets.log, replayed and compacted on open) — the role
// __consumer_offsets plays in Kafka. The broker's NN_<api>.go handlers call it with
// decoded kmsg requests; it knows nothing about the network.
//
// Concurrency: one mutex (Coordinator.mu) guards every group and the offsets; JoinGroup
// and SyncGroup wait for the rebalance outside it on per-member channels. A reaper
// goroutine expires sessions and rebalance deadlines.
package groups
