package event

import (
	"errors"
	"fmt"
	"time"
)

// Event is one behaviour record after parsing. The lineage fields (Topic … Source) are
// filled by whoever read the line, not by the parsers.
type Event struct {
	// EventID is an optional producer-given id used for deduplication ("" when absent).
	EventID string
	UserID  string
	ItemID  string
	// Action is the behaviour: pv, fav, cart, buy (Taobao), rate (MovieLens), or whatever a
	// jsonl/csv source sends; parsers lower-case it.
	Action    string
	EventTime time.Time
	// Value is the rating, price or quantity; valid only when HasValue.
	Value    float64
	HasValue bool
	// Category is the item's category when the event carries one (Taobao category_id).
	Category string
	// Props holds every other field of the line.
	Props map[string]string

	// Lineage.
	Topic      string
	Partition  int32
	Offset     int64
	IngestTime time.Time
	Source     string
}

// ErrHeader is returned for a header line of a headered format (csv, movielens): it is not
// data and not an error in the input.
var ErrHeader = errors.New("header line")

// ParseError says why a line did not parse.
type ParseError struct {
	Format string
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("cannot parse %s line: %s", e.Format, e.Reason)
}

func perr(format, reason string, args ...any) error {
	return &ParseError{Format: format, Reason: fmt.Sprintf(reason, args...)}
}

// Parser turns one line (without its trailing newline) into an Event. Implementations are
// not safe for concurrent use (csv with header learns its columns from the first line).
type Parser interface {
	Parse(line []byte) (Event, error)
	Format() string
}
