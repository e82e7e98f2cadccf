// Package event owns tagpipe's canonical behaviour Event (DESIGN.md "Data model") and the
// line parsers that turn raw log lines into it: jsonl, csv (header or declared columns),
// taobao (user_id,item_id,category_id,behavior_type,timestamp; no header) and movielens
// (userId,movieId,rating,timestamp → action "rate", value = rating).
//
// A line that does not parse returns a *ParseError with a short reason; the caller sends
// it to the dead-letter table with the raw text. Header lines of headered formats return
// ErrHeader so callers can skip them without treating them as bad data.
//
// The package is shared by ingest (partition key = user id) and streaming (ods/dwd rows);
// it has no dependencies beyond the standard library.
package event
