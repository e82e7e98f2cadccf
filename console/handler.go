package console

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

// pages in navigation order: path suffix, title, template, and the Status panels the
// page shows (only those are gathered for it: the broker and tag panels cost a Kafka
// round trip and SQL queries).
var pages = []struct {
	path, title, tmpl string
	panels            []string
}{
	{"", "Overview", "overview", allPanels},
	{"topics", "Topics", "topics", []string{panelBroker}},
	{"groups", "Consumer groups", "groups", []string{panelBroker}},
	{"ingest", "Collector", "ingest", []string{panelIngest}},
	{"streaming", "Streaming", "streaming", []string{panelStreaming}},
	{"jobs", "Jobs", "jobs", []string{panelJobs}},
	{"tags", "Tags", "tags", []string{panelTags}},
	{"user", "User lookup", "user", nil},
	{"sql", "SQL", "sql", nil},
}

var funcs = template.FuncMap{
	"sub": func(a, b int64) int64 { return a - b },
	"dur": func(a, b time.Time) string {
		if a.IsZero() || b.IsZero() {
			return ""
		}
		return b.Sub(a).Round(time.Millisecond).String()
	},
	"ms": func(d time.Duration) string {
		if d >= time.Second {
			return d.Round(10 * time.Millisecond).String()
		}
		return d.Round(100 * time.Microsecond).String()
	},
	"cell": func(v any) string {
		switch x := v.(type) {
		case nil:
			return "NULL"
		case float64:
			return fmt.Sprintf("%.6g", x)
		case time.Time:
			return x.Format(time.RFC3339)
		}
		return fmt.Sprint(v)
	},
}

type navItem struct {
	Name, Href string
	On         bool
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      []navItem
	Status   *Status
	Charts   charts
	User     string
	SQL      string
	Result   *Table
	Why      *Table
	WhyTitle string
	QueryErr string
}

func (v view) TotalRecords() int64 {
	var n int64
	for _, t := range v.Status.Topics {
		n += t.Records
	}
	return n
}

// LastBatches are the newest 20 streaming batches, newest first, for the batch table (the
// charts show all recent batches).
func (v view) LastBatches() []Batch {
	bs := v.Status.Streaming
	out := make([]Batch, 0, min(len(bs), 20))
	for i := len(bs) - 1; i >= 0 && len(out) < 20; i-- {
		out = append(out, bs[i])
	}
	return out
}

func (v view) TotalLag() int64 {
	var n int64
	for _, g := range v.Status.Groups {
		n += g.Lag
	}
	return n
}

// Handler serves the console under /console/ and its JSON under /console/status.json.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	sets := map[string]*template.Template{}
	for _, p := range pages {
		sets[p.tmpl] = template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+p.tmpl+".html"))
	}
	mux.HandleFunc("GET /console/status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.Status(r.Context()))
	})
	for _, p := range pages {
		p := p
		h := func(w http.ResponseWriter, r *http.Request) {
			v := view{Title: p.title, Status: c.status(r.Context(), p.panels...)}
			for _, q := range pages {
				v.Nav = append(v.Nav, navItem{Name: q.title, Href: "/console/" + q.path, On: q.path == p.path})
			}
			v.Charts = charts{st: v.Status}
			switch p.tmpl {
			case "user":
				c.lookupUser(r.Context(), &v, strings.TrimSpace(r.FormValue("id")))
			case "sql":
				v.SQL = r.FormValue("q")
				if v.SQL == "" {
					v.SQL = "SELECT tag, count(*) AS users FROM ads_user_interest_tags GROUP BY tag ORDER BY users DESC LIMIT 10"
				} else {
					v.Result, v.QueryErr = c.run(r.Context(), v.SQL)
				}
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := sets[p.tmpl].ExecuteTemplate(w, "layout", v); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
		pattern := "GET /console/" + p.path
		if p.path == "" {
			pattern += "{$}" // the overview alone: "/console/" would also match every unknown page
		}
		mux.HandleFunc(pattern, h)
		if p.tmpl == "sql" {
			mux.HandleFunc("POST /console/sql", h)
		}
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
	return mux
}

func (c *Console) run(ctx context.Context, sql string, args ...any) (*Table, string) {
	if c.opts.Query == nil {
		return nil, "SQL is not available in this process"
	}
	t, err := c.opts.Query(ctx, sql, args...)
	if err != nil {
		return nil, err.Error()
	}
	return t, ""
}

// lookupUser fills a user's latest interest tags and the events that weighed most.
func (c *Console) lookupUser(ctx context.Context, v *view, user string) {
	v.User = user
	if user == "" {
		return
	}
	v.Result, v.QueryErr = c.run(ctx, `SELECT rank, tag, round(weight, 4) AS weight, events, last_seen FROM `+latestTags+` WHERE CAST(user_id AS VARCHAR) = ? ORDER BY rank`, user)
	if v.QueryErr != "" {
		return
	}
	if c.opts.Why != nil {
		v.WhyTitle = "Why: the events that contributed most to each tag"
		t, err := c.opts.Why(ctx, user)
		if err != nil {
			v.QueryErr = err.Error()
		}
		v.Why = t
		return
	}
	v.WhyTitle = "Recent events of this user"
	v.Why, v.QueryErr = c.run(ctx, `SELECT e.event_time, e.action, e.item_id, e.value, array_to_string(i.tags, '|') AS item_tags
		FROM dwd_events e LEFT JOIN dim_item i ON i.item_id = e.item_id
		WHERE CAST(e.user_id AS VARCHAR) = ? ORDER BY e.event_time DESC LIMIT 20`, user)
}

// charts draws the SVGs pages ask for.
type charts struct{ st *Status }

// pairs maps items to (label, value) pairs, skipping those keep rejects.
func pairs[T any](items []T, keep func(T) bool, f func(T) (string, float64)) ([]string, []float64) {
	var ls []string
	var vs []float64
	for _, it := range items {
		if keep != nil && !keep(it) {
			continue
		}
		l, v := f(it)
		ls, vs = append(ls, l), append(vs, v)
	}
	return ls, vs
}

func (ch charts) TopicBars() template.HTML {
	l, v := pairs(ch.st.Topics, nil, func(t Topic) (string, float64) { return t.Name, float64(t.Records) })
	return BarChart("records per topic", l, v)
}

func (ch charts) GroupLag() template.HTML {
	l, v := pairs(ch.st.Groups, nil, func(g Group) (string, float64) { return g.Name, float64(g.Lag) })
	return BarChart("lag per group (records)", l, v)
}

func (ch charts) IngestBars() template.HTML {
	l, v := pairs(ch.st.Ingest, func(m MetricRow) bool { return strings.HasSuffix(m.Name, "_total") },
		func(m MetricRow) (string, float64) {
			return strings.TrimPrefix(m.Name, "tagpipe_ingest_") + " " + m.Labels, m.Value
		})
	return BarChart("collector counters", l, v)
}

func (ch charts) InputRate() template.HTML {
	var x []string
	var rate, recs []float64
	for _, b := range ch.st.Streaming {
		x = append(x, b.Time.Format("15:04:05"))
		rate, recs = append(rate, b.InputRate), append(recs, float64(b.Records))
	}
	return LineChart("input rate (records/s) and records per batch", x, Series{"input rate", rate}, Series{"records", recs})
}

func (ch charts) BatchTimes() template.HTML {
	var x []string
	var proc, delay []float64
	for _, b := range ch.st.Streaming {
		x = append(x, b.Time.Format("15:04:05"))
		proc = append(proc, float64(b.ProcessingTime.Milliseconds()))
		delay = append(delay, float64(b.SchedulingDelay.Milliseconds()))
	}
	return LineChart("processing time and scheduling delay (ms)", x, Series{"processing", proc}, Series{"scheduling delay", delay})
}

func (ch charts) JobDurations() template.HTML {
	var x []string
	var d []float64
	for i := len(ch.st.Jobs) - 1; i >= 0; i-- {
		r := ch.st.Jobs[i]
		if r.End.IsZero() {
			continue
		}
		x = append(x, r.Job+" "+r.DS)
		d = append(d, r.End.Sub(r.Start).Seconds())
	}
	return LineChart("job run durations (s), oldest to newest", x, Series{"duration", d})
}

func (ch charts) TopTags() template.HTML {
	l, v := pairs(ch.st.Tags, nil, func(t TagStat) (string, float64) { return t.Tag, float64(t.Users) })
	return BarChart("users per tag (latest day)", l, v)
}

func (ch charts) WeightHist() template.HTML {
	l, v := pairs(ch.st.Weights, nil, func(b Bucket) (string, float64) { return b.Label, float64(b.Count) })
	return Histogram("tag weight distribution", l, v)
}
