package explore

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// WriteHTML writes the self-contained report: inline CSS and SVG, no scripts, no fetches.
func (p *Profile) WriteHTML(w io.Writer) error {
	return reportTemplate.Execute(w, p)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":      pct,
	"str":      str,
	"numText":  numText,
	"num":      num,
	"short":    short,
	"dayChart": dayChart,
	"binChart": binChart,
	"topChart": topChart,
	"userBins": userBins,
	"fmtTime":  func(t interface{ Format(string) string }) string { return t.Format("2006-01-02 15:04:05") },
	"add":      func(a, b int) int { return a + b },
}).Parse(reportHTML))

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tagpipe explore: {{.Source}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;color:#1d2430;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.meta{color:#5b6776}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#5b6776;font-size:12px}
.bad b{color:#b42318}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}
th{background:#f5f7fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cols{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.col{border:1px solid #dde3ea;border-radius:8px;padding:10px}
.col h3{margin:0 0 6px;font-size:15px}.col h3 small{color:#5b6776;font-weight:normal}
svg text{font:11px system-ui,sans-serif;fill:#5b6776}code{font-size:12px;background:#f5f7fa;padding:1px 4px;border-radius:3px}
</style>
</head>
<body>
<h1>Data profile: {{.Source}}</h1>
<div class="meta">{{.Kind}}{{if .Files}}, {{len .Files}} file(s){{end}} · generated {{fmtTime .Generated}} UTC by tagpipe explore (statistics: DuckDB SUMMARIZE)</div>
<div class="cards">
<div class="card"><b id="rows">{{.Rows}}</b><span>rows</span></div>
{{if or (eq .Kind "csv") (eq .Kind "jsonl")}}<div class="card"><b id="lines">{{.Lines}}</b><span>lines read{{if .Truncated}} (first lines only){{end}}</span></div>
<div class="card{{if .Malformed}} bad{{end}}"><b id="malformed">{{.Malformed}}</b><span>malformed lines ({{pct .MalformedRate}})</span></div>{{end}}
<div class="card"><b>{{len .Columns}}</b><span>columns</span></div>
{{with .Time}}<div class="card"><b>{{.Days}}</b><span>days with events</span></div>{{end}}
{{with .Users}}<div class="card"><b id="users">{{.Users}}</b><span>users ({{.Column}})</span></div>{{end}}
</div>
{{with .Time}}
<h2>Events per day</h2>
<p class="meta">time column <code>{{.Column}}</code> ({{.Unit}}), {{fmtTime .Min}} … {{fmtTime .Max}}</p>
{{dayChart .PerDay}}
{{end}}
{{with .Users}}
<h2>Events per user</h2>
<p class="meta">user column <code>{{.Column}}</code>: min {{.Min}}, p25 {{num .P25}}, median {{num .Median}}, p75 {{num .P75}}, p90 {{num .P90}}, p99 {{num .P99}}, max {{.Max}}, mean {{num .Mean}}</p>
{{userBins .Histogram}}
{{end}}
<h2>Columns</h2>
<table id="summary">
<tr><th>column</th><th>type</th><th>count</th><th>nulls</th><th>null %</th><th>distinct</th><th>≈ unique</th><th>min</th><th>max</th><th>mean</th><th>std</th><th>q25</th><th>q50</th><th>q75</th></tr>
{{range .Columns}}<tr data-column="{{.Name}}"><td><b>{{.Name}}</b></td><td>{{.Type}}</td><td class="n">{{.Count}}</td><td class="n">{{.Nulls}}</td><td class="n">{{.NullPercentage}}</td><td class="n">{{.Distinct}}</td><td class="n">{{.ApproxUnique}}</td><td>{{short (str .Min) 30}}</td><td>{{short (str .Max) 30}}</td><td class="n" title="{{str .Avg}}">{{numText .Avg}}</td><td class="n" title="{{str .Std}}">{{numText .Std}}</td><td>{{short (str .Q25) 20}}</td><td>{{short (str .Q50) 20}}</td><td>{{short (str .Q75) 20}}</td></tr>
{{end}}</table>
<div class="cols">
{{range .Columns}}<div class="col"><h3>{{.Name}} <small>{{.Type}}</small></h3>
{{if .Histogram}}{{binChart .Histogram}}{{end}}
{{if .Top}}{{topChart .Top}}{{end}}
</div>
{{end}}</div>
{{if .Rejects}}
<h2>Malformed lines</h2>
<table id="rejects"><tr><th>file</th><th>line</th><th>reason</th><th>text</th></tr>
{{range .Rejects}}<tr><td>{{.File}}</td><td class="n">{{if .Line}}{{.Line}}{{end}}</td><td>{{.Reason}}</td><td><code>{{short .Text 120}}</code></td></tr>
{{end}}</table>
{{end}}
</body>
</html>
`

const chartW, chartH = 1100, 180

// bars draws a bar chart: one bar per value, labels under the first, middle and last bar,
// and a <title> tooltip per bar.
func bars(w, h int, labels []string, values []int64, color string) template.HTML {
	return barsLabeled(w, h, labels, values, color, true)
}

// barsLabeled draws the bars; middle puts a label under the middle bar too.
func barsLabeled(w, h int, labels []string, values []int64, color string, middle bool) template.HTML {
	var sb strings.Builder
	maxV := int64(1)
	for _, v := range values {
		maxV = max(maxV, v)
	}
	left, bottom, top := 48, 22, 8
	plotW, plotH := float64(w-left-4), float64(h-bottom-top)
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="100%%" viewBox="0 0 %d %d" role="img">`, w, h)
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c5ced8"/>`, left, h-bottom, w-4, h-bottom)
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="end">%d</text><text x="%d" y="%d" text-anchor="end">0</text>`,
		left-4, top+9, maxV, left-4, h-bottom)
	n := len(values)
	if n == 0 {
		sb.WriteString(`</svg>`)
		return template.HTML(sb.String())
	}
	bw := plotW / float64(n)
	for i, v := range values {
		bh := plotH * float64(v) / float64(maxV)
		x := float64(left) + float64(i)*bw
		gap := math.Min(1, bw*0.15)
		fmt.Fprintf(&sb, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"><title>%s: %d</title></rect>`,
			x+gap/2, float64(h-bottom)-bh, math.Max(bw-gap, 0.5), bh, color, html.EscapeString(labels[i]), v)
	}
	marks := []int{0, n / 2, n - 1}
	if !middle || n < 3 {
		marks = []int{0, n - 1}
	}
	for _, i := range marks {
		if n == 1 && i > 0 {
			break
		}
		anchor := "middle"
		if i == 0 {
			anchor = "start"
		} else if i == n-1 {
			anchor = "end"
		}
		x := float64(left) + (float64(i)+0.5)*bw
		if i == 0 {
			x = float64(left)
		} else if i == n-1 {
			x = float64(w - 4)
		}
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="%s">%s</text>`, x, h-6, anchor, html.EscapeString(labels[i]))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// dayChart draws events per day, one bar per calendar day from the first to the last
// (empty days included, so the axis is linear in time); spans longer than 400 days are
// drawn per month.
func dayChart(days []DayCount) template.HTML {
	if len(days) == 0 {
		return ""
	}
	first, err1 := time.Parse("2006-01-02", days[0].Day)
	last, err2 := time.Parse("2006-01-02", days[len(days)-1].Day)
	if err1 != nil || err2 != nil {
		return ""
	}
	step, layout, note := func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }, "2006-01-02", ""
	if last.Sub(first) > 400*24*time.Hour {
		step, layout = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }, "2006-01"
		first = time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, time.UTC)
		note = `<p class="meta">per month (` + fmt.Sprint(len(days)) + ` days with events)</p>`
	}
	per := map[string]int64{}
	for _, d := range days {
		t, _ := time.Parse("2006-01-02", d.Day)
		per[t.Format(layout)] += d.Count
	}
	var labels []string
	var values []int64
	for t := first; !t.After(last); t = step(t) {
		k := t.Format(layout)
		labels = append(labels, k)
		values = append(values, per[k])
	}
	return template.HTML(note) + bars(chartW, chartH, labels, values, "#3b6fd4")
}

func binChart(bins []Bin) template.HTML {
	labels := make([]string, len(bins))
	values := make([]int64, len(bins))
	for i, b := range bins {
		labels[i] = num(b.Lo) + " – " + num(b.Hi)
		if i == 0 {
			labels[i] = num(b.Lo)
		} else if i == len(bins)-1 {
			labels[i] = num(b.Hi)
		}
		values[i] = b.Count
	}
	return barsLabeled(360, 120, labels, values, "#2f9e77", false)
}

func userBins(bins []Bin) template.HTML {
	labels := make([]string, len(bins))
	values := make([]int64, len(bins))
	for i, b := range bins {
		labels[i] = fmt.Sprintf("%s–%s events", num(b.Lo), num(b.Hi-1))
		values[i] = b.Count
	}
	return bars(chartW, chartH, labels, values, "#8a5cd1")
}

// topChart draws the top values as horizontal bars.
func topChart(top []ValueCount) template.HTML {
	var sb strings.Builder
	maxV := int64(1)
	for _, t := range top {
		maxV = max(maxV, t.Count)
	}
	rowH, w := 18, 360
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="100%%" viewBox="0 0 %d %d" role="img">`, w, rowH*len(top)+4)
	for i, t := range top {
		bw := float64(w-150) * float64(t.Count) / float64(maxV)
		y := i*rowH + 2
		fmt.Fprintf(&sb, `<text x="0" y="%d">%s</text><rect x="110" y="%d" width="%.2f" height="%d" fill="#e08a2e"><title>%s: %d</title></rect><text x="%.1f" y="%d">%d</text>`,
			y+12, html.EscapeString(short(t.Value, 16)), y+2, math.Max(bw, 0.5), rowH-6, html.EscapeString(t.Value), t.Count, 114+bw, y+12, t.Count)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}
