// Package httpapi is POST /v1/query: SQL in, rows out as JSON, CSV or an Arrow IPC
// stream, each with the column types. It is an http.Handler mounted on the admin
// listener; every query runs through a read-only sql.Engine, so the engine's timeout, row
// limit and statement checks apply, and a client that goes away cancels its query.
package httpapi
