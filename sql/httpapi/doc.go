// Package httpapi is POST /v1/query: SQL in, rows out as JSON, CSV or an Arrow IPC
// stream, each with the column types. It is an http.Handler mounted on the admin
// listener; every query runs through a read-only sql.Engine, so the engine's timeout, row
// limit and statement checks apply, and a client that goes away cancels its query.
//
// Request: a JSON body {"sql": "SELECT … WHERE user_id = $1", "params": [42], "format":
// "json"}, or the SQL itself as a text/plain body with ?format= or an Accept header
// (text/csv, application/vnd.apache.arrow.stream). With sql.password set, HTTP basic
// auth (sql.user / sql.password) is required.
//
// Responses (200):
//
//	json   {"columns":[{"name":"n","type":"BIGINT"}],"rows":[[9742]],"row_count":1,
//	        "truncated":false,"elapsed_ms":1.2}
//	       numbers stay JSON numbers (DECIMAL and HUGEINT exactly), lists and structs nest,
//	       dates and times are DuckDB's text ("2024-05-01", "2024-05-01 12:00:00").
//	csv    RFC 4180 with a header line, NULL as an empty field; the column types are in
//	       the X-Tagpipe-Columns header (the JSON "columns" array).
//	arrow  an Arrow IPC stream; each field's metadata "duckdb_type" is the DuckDB type.
//
// Every format ends with the trailers X-Tagpipe-Rows and X-Tagpipe-Truncated (true when
// sql.max_rows cut the result). An error before the first row is a JSON body
// {"error": {"kind", "type", "message", "position"}} with status 400 (bad SQL; position
// is the 1-based character of the fault), 403 (refused: not read-only, or a file outside
// the warehouse), 504 (sql.query_timeout), 401 (password), 406 (unknown format). An
// error after rows were sent ends the JSON with "error" instead of "row_count", and sets
// the X-Tagpipe-Error trailer for every format.
package httpapi
