// Package groups is the broker's consumer-group coordinator. Classic groups: membership
// and the rebalance state machine (Empty → PreparingRebalance → CompletingRebalance →
// Stable), session and rebalance timeouts. Consumer groups of KIP-848 (consumer.go,
// assignor.go): the coordinator assigns the partitions (server assignors uniform and
// range), with group, target and member epochs and Kafka's reconciliation. Both keep
// committed offsets, durable in an append-only commit log (offsets.log, replayed and
// compacted on open) — the role __consumer_offsets plays in Kafka. The broker's
// NN_<api>.go handlers call it with decoded kmsg requests; it knows nothing about the
// network.
//
// Concurrency: one mutex (Coordinator.mu) guards every group and the offsets; JoinGroup
// and SyncGroup wait for the rebalance outside it on per-member channels. A reaper
// goroutine expires sessions and rebalance deadlines (and fences consumer-group members
// past their session or rebalance timeout).
package groups
