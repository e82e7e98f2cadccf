// Package broker is tagpipe's built-in single-node Kafka broker: the Kafka wire-protocol
// server (framing, pipelining, one file per API key named after it, e.g. 00_produce.go),
// its listeners with their security protocols, TLS (listeners.go) and SASL PLAIN and
// SCRAM (sasl.go, with SCRAM users stored by AlterUserScramCredentials in
// scram_store.go), the authorizer checks of every handler (authorize.go; the ACLs and
// their rules live in broker/acl), the topic registry with its persisted topic configs,
// background retention, idempotent producer ids, the transaction coordinator (txn.go),
// client quotas on the connections (quota.go; the quotas themselves in broker/quota),
// connection limits and ip quotas on accept (connection_quotas.go), Fetch sessions
// (KIP-227, fetch_session.go), and the
// broker's metrics. Consumer groups live in broker/groups. Partition logs on disk live in
// broker/storage; this package only calls its Log API. Everything is encoded and decoded with franz-go's kmsg, so any
// Kafka client works against it unchanged and a real Kafka cluster can replace it.
//
// What is not supported is listed in UNSUPPORTED.md; the lock order is in locks.md.
package broker
