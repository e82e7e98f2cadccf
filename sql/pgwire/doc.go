// Package pgwire is a PostgreSQL wire protocol (v3) endpoint in front of a read-only
// sql.Engine, so psql, pgx and BI tools can query the warehouse. It speaks the simple and
// the extended query protocol (Parse/Bind/Describe/Execute/Sync, text and binary formats
// through pgx's pgtype codecs), authenticates with SCRAM-SHA-256 or md5 when a password is
// set, offers TLS when a certificate is configured, honours CancelRequest, and answers the
// pg_catalog queries psql sends for \dt and \d from DuckDB's own catalog.
//
// Type mapping: DuckDB integers, floats, DECIMAL/HUGEINT (numeric), VARCHAR (text), BLOB,
// DATE, TIME, TIMESTAMP[TZ], INTERVAL, UUID, JSON and one-dimensional VARCHAR/BIGINT/
// INTEGER/SMALLINT/DOUBLE/BOOLEAN lists (arrays) travel as their PostgreSQL types in text
// or binary; STRUCT, MAP and nested lists travel as text in DuckDB's notation.
// Session statements (SET of client settings, SHOW, BEGIN/COMMIT/ROLLBACK, DISCARD) are
// answered per connection; statement_timeout shortens sql.query_timeout. COPY … TO
// STDOUT (psql's \copy, pgx's CopyTo) streams a query's rows in text or CSV (copy.go);
// COPY FROM STDIN and COPY to server files are refused. Not supported: function calls,
// LISTEN/NOTIFY and SHOW ALL.
//
// Message framing is pgx's pgproto3; the server side of SCRAM is written here because no
// maintained Go library offers it in a form that fits a pgproto3 backend.
package pgwire
