// Package ingest is tagpipe's Flume-like collector: sources (spooldir, taildir, exec,
// kafka, tcp, syslog, http) put events into channels (memory, file write-ahead log)
// inside a transaction; sinks (kafka, file_roll, logger) take them out in another
// transaction and commit only once the destination acknowledged them, so delivery is
// at-least-once across crashes of the collector and of the broker (the exec source
// excepted: a command's output cannot be read again).
//
// This package holds the shared vocabulary (Event, Channel, Tx, counters). The parts live
// below it, one folder per concern: channel/, spooldir/, taildir/, execsrc/, kafkasrc/,
// netsrc/ (tcp, http), syslog/, sink/, interceptor/, flumeconf/, and agent/ wires an
// agent from its config.
package ingest
