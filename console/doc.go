// Package console is the operator's web console, served by the admin listener: topics,
// consumer groups and lag, collector sources and channels, streaming batches, job runs,
// tag distributions, a user lookup and a SQL box. Pages are rendered on the server as
// plain HTML with inline SVG charts; nothing is fetched from the network.
//
// The console knows no room's internals. It reads the broker over the Kafka protocol
// (kadm, so it works against a real cluster too), the collector through the process's
// Prometheus registry, and everything else through the small provider functions in
// Options that cmd/tagpipe wires up. `tagpipe status` prints the same Status as text.
package console
