package event

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Options choose and configure a parser.
type Options struct {
	// Format is one of Formats(): "jsonl", "csv", "taobao", "movielens", "auto".
	Format string
	// Columns declares the csv schema (source column names, in order). Empty with
	// Header=true means the first line is the header.
	Columns []string
	// Header says csv input carries a header line; a line equal to the header is skipped
	// (ErrHeader) wherever it appears, so concatenated files work.
	Header bool
	// Delimiter of csv fields; 0 means ','.
	Delimiter rune
	// Mapping maps canonical field → source field name for jsonl and csv, e.g.
	// {"user_id": "uid", "event_time": "ts"}. Canonical names: event_id, user_id, item_id,
	// action, event_time, value, category. Unmapped canonical fields are looked up under
	// their own name and the usual aliases (userId, movieId, behavior_type, timestamp …).
	Mapping map[string]string
	// TimeLayout is a Go time layout for string timestamps; empty accepts RFC 3339,
	// "2006-01-02 15:04:05" and epoch numbers (s, ms, µs or ns by magnitude).
	TimeLayout string
	// Location for layouts without a zone; nil means UTC.
	Location *time.Location
}

// Formats lists the shipped formats. "auto" detects jsonl, taobao or movielens per line.
func Formats() []string { return []string{"jsonl", "csv", "taobao", "movielens", "auto"} }

// New returns a parser for opts.Format.
func New(opts Options) (Parser, error) {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	for canon := range opts.Mapping {
		if _, ok := aliases[canon]; !ok {
			return nil, fmt.Errorf("cannot build %s parser: unknown canonical field %q in mapping", opts.Format, canon)
		}
	}
	switch strings.ToLower(opts.Format) {
	case "jsonl", "json":
		return &jsonParser{m: newMapper(opts)}, nil
	case "csv":
		if len(opts.Columns) == 0 && !opts.Header {
			return nil, fmt.Errorf("cannot build csv parser: need declared columns or header: true")
		}
		d := opts.Delimiter
		if d == 0 {
			d = ','
		}
		if d > 127 || d == '"' || d == '\n' || d == '\r' {
			return nil, fmt.Errorf("cannot build csv parser: bad delimiter %q", d)
		}
		p := &csvParser{m: newMapper(opts), delim: byte(d), header: opts.Header}
		if len(opts.Columns) > 0 {
			p.setColumns(append([]string(nil), opts.Columns...))
		}
		return p, nil
	case "taobao":
		return taobaoParser{}, nil
	case "auto":
		return &autoParser{json: &jsonParser{m: newMapper(opts)}}, nil
	case "movielens":
		return movielensParser{}, nil
	}
	return nil, fmt.Errorf("cannot build parser: unknown format %q (want one of %s)", opts.Format, strings.Join(Formats(), ", "))
}

// aliases are the source names tried for each canonical field, in order.
var aliases = map[string][]string{
	"event_id":   {"event_id", "eventId", "id"},
	"user_id":    {"user_id", "userId", "uid", "user"},
	"item_id":    {"item_id", "itemId", "movieId", "movie_id", "item"},
	"action":     {"action", "behavior_type", "behavior", "event_type", "type"},
	"event_time": {"event_time", "timestamp", "ts", "time", "eventTime"},
	"value":      {"value", "rating", "price", "quantity"},
	"category":   {"category", "category_id", "categoryId"},
}

var canonOrder = []string{"event_id", "user_id", "item_id", "action", "event_time", "value", "category"}

// mapper resolves source field names to canonical fields.
type mapper struct {
	opts Options
	// names[canon] lists the source names to try.
	names map[string][]string
}

func newMapper(opts Options) *mapper {
	m := &mapper{opts: opts, names: map[string][]string{}}
	for canon, al := range aliases {
		if src, ok := opts.Mapping[canon]; ok {
			m.names[canon] = []string{src}
		} else {
			m.names[canon] = al
		}
	}
	return m
}

// build fills an Event from a field lookup; used marks consumed source names; rest
// iterates the remaining fields into Props.
func (m *mapper) build(format string, get func(name string) (string, bool), rest func(used map[string]bool, props map[string]string)) (Event, error) {
	var ev Event
	used := make(map[string]bool, 8)
	val := map[string]string{}
	for _, canon := range canonOrder {
		for _, name := range m.names[canon] {
			if v, ok := get(name); ok {
				used[name] = true
				val[canon] = v
				break
			}
		}
	}
	ev.EventID = val["event_id"]
	ev.UserID = val["user_id"]
	if ev.UserID == "" {
		return ev, perr(format, "missing user_id")
	}
	ev.ItemID = val["item_id"]
	ev.Action = strings.ToLower(strings.TrimSpace(val["action"]))
	if ev.Action == "" {
		return ev, perr(format, "missing action")
	}
	ts, ok := val["event_time"]
	if !ok || ts == "" {
		return ev, perr(format, "missing event_time")
	}
	t, err := parseTime(ts, m.opts.TimeLayout, m.opts.Location)
	if err != nil {
		return ev, perr(format, "bad event_time %q: %v", ts, err)
	}
	ev.EventTime = t
	if v, ok := val["value"]; ok && v != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return ev, perr(format, "bad value %q", v)
		}
		ev.Value, ev.HasValue = f, true
	}
	ev.Category = val["category"]
	props := map[string]string{}
	rest(used, props)
	if len(props) > 0 {
		ev.Props = props
	}
	return ev, nil
}

// parseTime accepts epoch numbers (seconds, ms, µs, ns by magnitude; fractions allowed),
// the given layout, RFC 3339 and "2006-01-02 15:04:05".
func parseTime(s, layout string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if layout != "" {
		return time.ParseInLocation(layout, s, loc)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return epoch(n), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		if math.Abs(f) < 1e11 {
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
		}
		return epoch(int64(f)), nil
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an epoch number, RFC 3339 or 2006-01-02 15:04:05 time")
}

func epoch(n int64) time.Time {
	a := n
	if a < 0 {
		a = -a
	}
	switch {
	case a < 1e11:
		return time.Unix(n, 0).UTC()
	case a < 1e14:
		return time.UnixMilli(n).UTC()
	case a < 1e17:
		return time.UnixMicro(n).UTC()
	}
	return time.Unix(0, n).UTC()
}
