package explore

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Options configure a profile.
type Options struct {
	// TimeColumn is the event time; "" = detect (a DATE/TIMESTAMP column, or an integer
	// column named like timestamp/ts/time holding Unix seconds or milliseconds).
	TimeColumn string
	// UserColumn is the user id; "" = detect (user_id, userId, uid, user).
	UserColumn string
	// Header says whether CSV files start with a header line: "yes", "no" or "" (guess).
	Header string
	// Columns names the CSV columns (e.g. Taobao's headerless user_id,item_id,…);
	// without it a headerless file's columns are column0, column1, ….
	Columns []string
	// MaxLines stops reading raw files after this many data lines (a sample of a huge
	// log); 0 = read everything.
	MaxLines int64
	// Top is how many top values each column lists; 0 = 5.
	Top int
	// Bins is the number of histogram bars; 0 = 20.
	Bins int
	// Samples is how many malformed lines are kept; 0 = 20.
	Samples int
	// Tolerance is the share of values allowed not to fit a column's inferred type before
	// the column falls back to VARCHAR; 0 = 0.01.
	Tolerance float64
	// Threads for DuckDB; 0 = all cores (1 makes SUMMARIZE's approximate quantiles
	// repeatable run to run).
	Threads int
	// Register provides warehouse tables for a table name as source; nil = files only.
	Register tsql.RegisterFunc
	// Now stamps the report; nil = time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Top <= 0 {
		o.Top = 5
	}
	if o.Bins <= 0 {
		o.Bins = 20
	}
	if o.Samples <= 0 {
		o.Samples = 20
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.01
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Profile is everything the reports show.
type Profile struct {
	Source    string    `json:"source"`
	Kind      string    `json:"kind"` // csv, jsonl, parquet, table
	Files     []string  `json:"files,omitempty"`
	Generated time.Time `json:"generated"`
	// Lines is the number of data lines read (raw files); Rows the ones that parsed.
	Lines int64 `json:"lines"`
	// Truncated: reading stopped at Options.MaxLines; the profile is of the first lines.
	Truncated     bool       `json:"truncated,omitempty"`
	Rows          int64      `json:"rows"`
	Malformed     int64      `json:"malformed"`
	MalformedRate float64    `json:"malformed_rate"`
	Rejects       []Reject   `json:"rejects,omitempty"`
	Columns       []Column   `json:"columns"`
	Time          *TimeStats `json:"time,omitempty"`
	Users         *UserStats `json:"users,omitempty"`
}

// Reject is one malformed line.
type Reject struct {
	File   string `json:"file"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Text   string `json:"text"`
}

// Column is one column's profile; the Summarize fields are DuckDB's SUMMARIZE row for it.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// From SUMMARIZE (as DuckDB prints them; nil when SUMMARIZE has NULL).
	Min            *string `json:"min"`
	Max            *string `json:"max"`
	ApproxUnique   int64   `json:"approx_unique"`
	Avg            *string `json:"avg"`
	Std            *string `json:"std"`
	Q25            *string `json:"q25"`
	Q50            *string `json:"q50"`
	Q75            *string `json:"q75"`
	Count          int64   `json:"count"`
	NullPercentage string  `json:"null_percentage"`
	// Exact counts.
	Nulls     int64        `json:"nulls"`
	Distinct  int64        `json:"distinct"`
	Top       []ValueCount `json:"top"`
	Histogram []Bin        `json:"histogram,omitempty"`
}

// ValueCount is a value and how often it occurs.
type ValueCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Bin is one histogram bar: [Lo, Hi) (the last bar includes Hi).
type Bin struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int64   `json:"count"`
}

// TimeStats is the event-time range and events per day.
type TimeStats struct {
	Column string     `json:"column"`
	Unit   string     `json:"unit"` // timestamp, date, unix_s, unix_ms
	Min    time.Time  `json:"min"`
	Max    time.Time  `json:"max"`
	Days   int        `json:"days"`
	PerDay []DayCount `json:"per_day"`
}

// DayCount is the number of events on one day (UTC).
type DayCount struct {
	Day   string `json:"day"`
	Count int64  `json:"count"`
}

// UserStats is the events-per-user distribution.
type UserStats struct {
	Column    string  `json:"column"`
	Users     int64   `json:"users"`
	Min       int64   `json:"min"`
	P25       float64 `json:"p25"`
	Median    float64 `json:"median"`
	P75       float64 `json:"p75"`
	P90       float64 `json:"p90"`
	P99       float64 `json:"p99"`
	Max       int64   `json:"max"`
	Mean      float64 `json:"mean"`
	Histogram []Bin   `json:"histogram"`
}

// Run profiles source: a file, a directory of files, or (with Options.Register) a table.
func Run(ctx context.Context, source string, opts Options) (*Profile, error) {
	opts.defaults()
	eo := tsql.DefaultOptions()
	eo.Threads = opts.Threads
	eo.Register = opts.Register
	e, err := tsql.Open(ctx, eo)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	conn, err := e.DB().Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	p := &Profile{Source: source, Generated: opts.Now().UTC()}
	tmp, err := os.MkdirTemp("", "tagpipe-explore-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a scratch directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := load(ctx, conn, source, tmp, p, &opts); err != nil {
		return nil, err
	}
	if err := summarize(ctx, conn, p, &opts); err != nil {
		return nil, err
	}
	if p.Lines > 0 {
		p.MalformedRate = float64(p.Malformed) / float64(p.Lines)
	}
	return p, nil
}

// sources finds the files of source and their kind.
func sources(source string) (kind string, files []string, err error) {
	st, err := os.Stat(source)
	if err != nil {
		return "", nil, err
	}
	if !st.IsDir() {
		return kindOf(source), []string{source}, nil
	}
	err = filepath.WalkDir(source, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != source && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && kindOf(p) != "" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("cannot list %q: %w", source, err)
	}
	if len(files) == 0 {
		return "", nil, fmt.Errorf("%q holds no .csv, .tsv, .txt, .log, .jsonl, .ndjson, .json or .parquet files (nor such files renamed .COMPLETED)", source)
	}
	kind = kindOf(files[0])
	for _, f := range files {
		if kindOf(f) != kind {
			return "", nil, fmt.Errorf("%q mixes %s and %s files; profile one kind at a time", source, kind, kindOf(f))
		}
	}
	return kind, files, nil
}

func kindOf(p string) string {
	// A file the collector's spooldir source has read is renamed NAME.COMPLETED: it is
	// still the raw log, the one to profile after the fact.
	l := strings.ToLower(strings.TrimSuffix(p, ".COMPLETED"))
	switch {
	case strings.HasSuffix(l, ".csv"), strings.HasSuffix(l, ".tsv"), strings.HasSuffix(l, ".txt"), strings.HasSuffix(l, ".log"):
		return "csv"
	case strings.HasSuffix(l, ".jsonl"), strings.HasSuffix(l, ".ndjson"), strings.HasSuffix(l, ".json"):
		return "jsonl"
	case strings.HasSuffix(l, ".parquet"):
		return "parquet"
	}
	return ""
}

// load creates the table "data" holding the source's well-formed rows.
func load(ctx context.Context, conn *dbsql.Conn, source, tmp string, p *Profile, opts *Options) error {
	kind, files, err := sources(source)
	if err != nil {
		if !os.IsNotExist(err) || opts.Register == nil {
			return fmt.Errorf("cannot profile %q: %w", source, err)
		}
		// Not a file: a warehouse table.
		p.Kind = "table"
		_, err := conn.ExecContext(ctx, "CREATE TABLE data AS SELECT * FROM "+tsql.QuoteIdent(source))
		if err != nil {
			return fmt.Errorf("cannot read table %q: %w", source, err)
		}
		return nil
	}
	p.Kind, p.Files = kind, files
	switch kind {
	case "csv":
		return loadCSV(ctx, conn, files, tmp, p, opts)
	case "jsonl":
		return loadJSONL(ctx, conn, files, tmp, p, opts)
	case "parquet":
		list := make([]string, len(files))
		for i, f := range files {
			list[i] = tsql.QuoteString(f)
		}
		_, err := conn.ExecContext(ctx, "CREATE TABLE data AS SELECT * FROM read_parquet(["+strings.Join(list, ", ")+"], union_by_name=true)")
		if err != nil {
			return fmt.Errorf("cannot read Parquet files: %w", err)
		}
		return nil
	}
	return fmt.Errorf("cannot profile %q: unknown file kind", source)
}
