// Package sink holds the collector's sinks: kafka (a segmentio/kafka-go Writer with
// acks=all, key and topic per event, a dead-letter topic for bad input), file_roll
// (rolling local files, for debugging), logger, and the failover sink group. A sink's
// Deliver returns nil only when every event was acknowledged; the agent commits the
// channel take only then.
package sink
