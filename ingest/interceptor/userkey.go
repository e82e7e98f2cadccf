package interceptor

import (
	"errors"
	"fmt"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/internal/event"
)

// UserKey sets the record key header to the event's user id, found by the canonical line
// parser (internal/event) the streaming engine uses too, so one user's events share a
// partition and keep their order. A line without a user id (a header line, free text)
// gets no key and is spread over partitions; a line whose other fields are bad still gets
// its user's key (parsing errors are the streaming engine's business: dead letters).
type UserKey struct {
	p event.Parser
}

// UserKeyOptions configure NewUserKey.
type UserKeyOptions struct {
	// Format: auto (default), jsonl, csv, taobao, movielens.
	Format string
	// Field names the user id field (jsonl) or column (csv) when it is not one of the
	// usual names (user_id, userId, uid, user).
	Field string
	// Columns declares the csv columns; empty means the file has a header line.
	Columns []string
}

// NewUserKey builds the parser for the format.
func NewUserKey(o UserKeyOptions) (*UserKey, error) {
	opts := event.Options{Format: o.Format, Columns: o.Columns}
	if opts.Format == "" {
		opts.Format = "auto"
	}
	if opts.Format == "csv" && len(o.Columns) == 0 {
		opts.Header = true
	}
	if o.Field != "" {
		opts.Mapping = map[string]string{"user_id": o.Field}
	}
	p, err := event.New(opts)
	if err != nil {
		return nil, fmt.Errorf("user_key: %w", err)
	}
	return &UserKey{p: p}, nil
}

func (u *UserKey) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		if _, ok := evs[i].Headers[ingest.HeaderKey]; ok {
			continue
		}
		ev, err := u.p.Parse(evs[i].Body)
		if errors.Is(err, event.ErrHeader) || ev.UserID == "" {
			continue
		}
		evs[i].SetHeader(ingest.HeaderKey, ev.UserID)
	}
	return evs
}
