package explore

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	tsql "github.com/tagpipe/tagpipe/sql"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ratings = filepath.Join("..", "..", "testdata", "movielens", "ratings.csv")

func fixedNow() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

// duckSummarize is DuckDB's own SUMMARIZE of a CSV file, read by DuckDB's own sniffer, on
// one thread like the profile (SUMMARIZE's quantiles are approximate and merge order
// matters).
func duckSummarize(t *testing.T, path string) (map[string]Column, *sql.DB, func()) {
	t.Helper()
	opts := tsql.DefaultOptions()
	opts.Threads = 1
	e, err := tsql.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.DB().Query("SELECT * REPLACE (null_percentage::VARCHAR AS null_percentage) FROM (SUMMARIZE SELECT * FROM read_csv(" + tsql.QuoteString(path) + "))")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]Column{}
	for rows.Next() {
		var c Column
		var np *string
		if err := rows.Scan(&c.Name, &c.Type, &c.Min, &c.Max, &c.ApproxUnique, &c.Avg, &c.Std, &c.Q25, &c.Q50, &c.Q75, &c.Count, &np); err != nil {
			t.Fatal(err)
		}
		c.NullPercentage = str(np)
		out[c.Name] = c
	}
	return out, e.DB(), func() { e.Close() }
}

func sameSummary(t *testing.T, got Column, want Column) {
	t.Helper()
	pairs := [][3]string{
		{"type", got.Type, want.Type}, {"min", str(got.Min), str(want.Min)}, {"max", str(got.Max), str(want.Max)},
		{"approx_unique", strconv.FormatInt(got.ApproxUnique, 10), strconv.FormatInt(want.ApproxUnique, 10)},
		{"avg", str(got.Avg), str(want.Avg)}, {"std", str(got.Std), str(want.Std)},
		{"q25", str(got.Q25), str(want.Q25)}, {"q50", str(got.Q50), str(want.Q50)}, {"q75", str(got.Q75), str(want.Q75)},
		{"count", strconv.FormatInt(got.Count, 10), strconv.FormatInt(want.Count, 10)},
		{"null_percentage", got.NullPercentage, want.NullPercentage},
	}
	for _, p := range pairs {
		if p[1] != p[2] {
			t.Errorf("column %s %s: profile %q, DuckDB SUMMARIZE %q", got.Name, p[0], p[1], p[2])
		}
	}
}

// htmlHas checks the report shows a column's SUMMARIZE numbers.
func htmlHas(t *testing.T, page string, c Column) {
	t.Helper()
	re := regexp.MustCompile(`(?s)<tr data-column="` + regexp.QuoteMeta(c.Name) + `">(.*?)</tr>`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no summary row for %s", c.Name)
	}
	for _, want := range []string{">" + strconv.FormatInt(c.Count, 10) + "<", ">" + strconv.FormatInt(c.ApproxUnique, 10) + "<",
		`title="` + str(c.Avg) + `"`, ">" + str(c.Min) + "<", ">" + str(c.Max) + "<", ">" + c.NullPercentage + "<"} {
		if !strings.Contains(m[1], want) {
			t.Errorf("summary row of %s lacks %q:\n%s", c.Name, want, m[1])
		}
	}
}

func TestRatingsProfileEqualsSummarize(t *testing.T) {
	p, err := Run(context.Background(), ratings, Options{Threads: 1, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	want, db, done := duckSummarize(t, ratings)
	defer done()
	if p.Rows != 100836 || p.Lines != 100836 || p.Malformed != 0 || len(p.Columns) != 4 {
		t.Fatalf("rows=%d lines=%d malformed=%d columns=%d", p.Rows, p.Lines, p.Malformed, len(p.Columns))
	}
	for _, c := range p.Columns {
		sameSummary(t, c, want[c.Name])
		var distinct, nulls int64
		q := tsql.QuoteIdent(c.Name)
		if err := db.QueryRow("SELECT count(DISTINCT "+q+"), count(*) - count("+q+") FROM read_csv("+tsql.QuoteString(ratings)+")").Scan(&distinct, &nulls); err != nil {
			t.Fatal(err)
		}
		if c.Distinct != distinct || c.Nulls != nulls {
			t.Errorf("%s: distinct %d nulls %d, DuckDB %d %d", c.Name, c.Distinct, c.Nulls, distinct, nulls)
		}
	}
	// Time and users from the MovieLens columns.
	var lo, hi time.Time
	var days int
	if err := db.QueryRow("SELECT min(make_timestamp(timestamp * 1000000)), max(make_timestamp(timestamp * 1000000)), "+
		"count(DISTINCT make_timestamp(timestamp * 1000000)::DATE) FROM read_csv("+tsql.QuoteString(ratings)+")").Scan(&lo, &hi, &days); err != nil {
		t.Fatal(err)
	}
	if p.Time == nil || p.Time.Column != "timestamp" || p.Time.Unit != "unix_s" || !p.Time.Min.Equal(lo) || !p.Time.Max.Equal(hi) || p.Time.Days != days {
		t.Fatalf("time %+v, want %v..%v over %d days", p.Time, lo, hi, days)
	}
	var sum int64
	for _, d := range p.Time.PerDay {
		sum += d.Count
	}
	if sum != p.Rows {
		t.Fatalf("events per day sum to %d, want %d", sum, p.Rows)
	}
	if p.Users == nil || p.Users.Column != "userId" || p.Users.Users != 610 || p.Users.Min != 20 {
		t.Fatalf("users %+v", p.Users)
	}
	var hist int64
	for _, b := range p.Users.Histogram {
		hist += b.Count
	}
	if hist != 610 {
		t.Fatalf("user histogram holds %d users", hist)
	}
	var page, text bytes.Buffer
	if err := p.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Columns {
		htmlHas(t, page.String(), c)
	}
	if !strings.Contains(page.String(), `<b id="rows">100836</b>`) || !strings.Contains(page.String(), `<b id="users">610</b>`) {
		t.Fatal("report lacks the row or user count")
	}
	if !strings.Contains(text.String(), "rows: 100836 of 100836 lines; malformed: 0 (0.00%)") ||
		!strings.Contains(text.String(), "users: userId: 610 users; events per user min 20") {
		t.Fatalf("terminal summary:\n%s", text.String())
	}
	selfContained(t, page.String())
}

func TestBrokenCSVCountsMalformedLines(t *testing.T) {
	src, err := os.ReadFile(ratings)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	header, data := lines[0], lines[1:2001]
	dir := t.TempDir()
	// The well-formed lines alone, for DuckDB's reference SUMMARIZE.
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte(header+"\n"+strings.Join(data, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := []string{
		"1,31,2.5,1260759144,surplus", // 5 fields
		"1,1029",                      // 2 fields
		`1,"1061,3.0,1260759182`,      // unterminated quote
		"1,1129,abc,1260759185",       // not a number
		"",                            // blank lines are not data
		"1,1172,4.0,12607591xx",       // not an integer
	}
	var all []string
	all = append(all, header)
	all = append(all, data[:500]...)
	all = append(all, broken[:3]...)
	all = append(all, data[500:1500]...)
	all = append(all, broken[3:]...)
	all = append(all, data[1500:]...)
	bad := filepath.Join(dir, "broken.csv")
	if err := os.WriteFile(bad, []byte(strings.Join(all, "\r\n")+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), bad, Options{Threads: 1, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 2000 || p.Lines != 2005 || p.Malformed != 5 {
		t.Fatalf("rows=%d lines=%d malformed=%d", p.Rows, p.Lines, p.Malformed)
	}
	if want := 5.0 / 2005; p.MalformedRate != want {
		t.Fatalf("rate %v, want %v", p.MalformedRate, want)
	}
	reasons := []string{"5 fields, want 4", "2 fields, want 4", `extraneous or missing " in quoted-field`,
		"value 'abc' in column rating is not DOUBLE", "value '12607591xx' in column timestamp is not BIGINT"}
	wantLines := []int64{502, 503, 504, 1505, 1507}
	if len(p.Rejects) != 5 {
		t.Fatalf("rejects %+v", p.Rejects)
	}
	for i, r := range p.Rejects {
		if !strings.Contains(r.Reason, reasons[i]) || r.Line != wantLines[i] || r.Text == "" {
			t.Errorf("reject %d = %+v, want line %d reason %q", i, r, wantLines[i], reasons[i])
		}
	}
	want, _, done := duckSummarize(t, good)
	defer done()
	for _, c := range p.Columns {
		sameSummary(t, c, want[c.Name])
	}
	var page bytes.Buffer
	if err := p.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Columns {
		htmlHas(t, page.String(), c)
	}
	if !strings.Contains(page.String(), `<b id="malformed">5</b>`) || !strings.Contains(page.String(), "value &#39;abc&#39; in column rating is not DOUBLE") {
		t.Fatal("report lacks the malformed lines")
	}
	selfContained(t, page.String())
}

func TestJSONLinesAndDirectory(t *testing.T) {
	dir := t.TempDir()
	a := `{"user_id": 1, "item_id": 10, "action": "click", "event_time": "2024-03-01 10:00:00"}
{"user_id": 1, "item_id": 11, "action": "buy", "event_time": "2024-03-02 11:00:00"}
not json at all
{"user_id": 2, "item_id": 10, "action": "click", "event_time": "2024-03-02 12:00:00"}
[1, 2]
`
	b := `{"user_id": 3, "item_id": 12, "action": "cart", "event_time": "2024-03-04 09:30:00"}
`
	if err := os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte(a), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.jsonl"), []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), dir, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "jsonl" || len(p.Files) != 2 || p.Rows != 4 || p.Lines != 6 || p.Malformed != 2 {
		t.Fatalf("%+v", p)
	}
	if p.Time == nil || p.Time.Column != "event_time" || p.Time.Days != 3 || p.Users == nil || p.Users.Users != 3 || p.Users.Max != 2 {
		t.Fatalf("time %+v users %+v", p.Time, p.Users)
	}
	if !strings.Contains(p.Rejects[0].Reason, "invalid JSON") || p.Rejects[1].Reason != "not a JSON object" {
		t.Fatalf("rejects %+v", p.Rejects)
	}
}

func TestTableSource(t *testing.T) {
	dir := t.TempDir()
	e, err := tsql.Open(context.Background(), tsql.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dwd_events"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = e.DB().Exec("COPY (SELECT i % 10 AS user_id, DATE '2024-01-01' + (i % 3)::INTEGER AS dt FROM range(100) t(i)) TO " +
		tsql.QuoteString(filepath.Join(dir, "dwd_events", "p.parquet")) + " (FORMAT parquet)")
	e.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), "dwd_events", Options{Register: tsql.DirViews(dir), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "table" || p.Rows != 100 || p.Users.Users != 10 || p.Time.Days != 3 {
		t.Fatalf("%+v", p)
	}
	if _, err := Run(context.Background(), "nosuch", Options{Register: tsql.DirViews(dir)}); err == nil {
		t.Fatal("profiling a missing table passed")
	}
}

// selfContained: no scripts, no external resources.
func selfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<script", " src=", " href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Fatalf("report contains %q", bad)
		}
	}
	if n := strings.Count(page, "<svg"); n < 3 {
		t.Fatalf("report has %d charts", n)
	}
}

func TestHeaderlessTaobaoLog(t *testing.T) {
	dir := t.TempDir()
	log := "1,2268318,2520377,pv,1511544070\n1,2333346,2520771,pv,1511561733\n2,2576651,149192,fav,1511572885\n" +
		"3,3830808,4181361,buy,1511593493\nnot,a,valid,line\n3,4365585,2520377,cart,1511596146\n"
	path := filepath.Join(dir, "UserBehavior.csv")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), path, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 5 || p.Lines != 6 || p.Malformed != 1 || p.Columns[0].Name != "column0" || p.Columns[0].Type != "BIGINT" {
		t.Fatalf("guessed no header: rows=%d lines=%d malformed=%d columns=%+v", p.Rows, p.Lines, p.Malformed, p.Columns)
	}
	p, err = Run(context.Background(), path, Options{Now: fixedNow,
		Columns: []string{"user_id", "item_id", "category_id", "behavior_type", "timestamp"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 5 || p.Users == nil || p.Users.Users != 3 || p.Time == nil || p.Time.Unit != "unix_s" || p.Time.Days != 2 {
		t.Fatalf("named columns: rows=%d users=%+v time=%+v", p.Rows, p.Users, p.Time)
	}
	if top := p.Columns[3].Top; len(top) == 0 || top[0].Value != "pv" || top[0].Count != 2 {
		t.Fatalf("behavior_type top %+v", top)
	}
	if _, err := Run(context.Background(), path, Options{Columns: []string{"a"}}); err == nil {
		t.Fatal("a wrong number of column names was accepted")
	}
}

func TestMaxLinesSamplesTheHead(t *testing.T) {
	p, err := Run(context.Background(), ratings, Options{MaxLines: 1000, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 1000 || p.Lines != 1000 || !p.Truncated {
		t.Fatalf("rows=%d lines=%d truncated=%v", p.Rows, p.Lines, p.Truncated)
	}
	var text bytes.Buffer
	_ = p.WriteText(&text)
	if !strings.Contains(text.String(), "(first lines only: --max-lines)") {
		t.Fatalf("summary:\n%s", text.String())
	}
}

var update = flag.Bool("update", false, "rewrite sql/testdata/explore_*.golden")

// TestSummaryGolden freezes the terminal summary of MovieLens ratings.csv.
func TestSummaryGolden(t *testing.T) {
	p, err := Run(context.Background(), ratings, Options{Threads: 1, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("..", "testdata", "explore_ratings.txt.golden")
	if *update {
		if err := os.WriteFile(golden, text.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(text.Bytes(), want) {
		t.Fatalf("summary differs from %s:\n--- got\n%s--- want\n%s", golden, text.String(), want)
	}
}

// TestSpooledCompletedFiles: files the spooldir source renamed .COMPLETED are profiled
// as the logs they are (tagpipe explore on a spool directory after ingestion found
// "no .csv, .jsonl, .json or .parquet files").
func TestSpooledCompletedFiles(t *testing.T) {
	dir := t.TempDir()
	lines := "user_id,item_id,action,ts\n1,10,click,1709287200\n2,11,buy,1709373600\n"
	if err := os.WriteFile(filepath.Join(dir, "clicks.csv.COMPLETED"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "more.csv"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), dir, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "csv" || len(p.Files) != 2 || p.Rows != 4 || p.Malformed != 0 {
		t.Fatalf("%+v", p)
	}
}
