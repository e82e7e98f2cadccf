package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Chart sizes are fixed so pages lay out the same for every data set.
const (
	chartW, chartH = 640, 200
	padL, padB     = 56, 28
)

// BarChart draws labelled horizontal bars (top tags, partitions by size …).
func BarChart(title string, labels []string, values []float64) template.HTML {
	if len(values) == 0 {
		return emptyChart(title)
	}
	rowH := 18
	h := len(values)*rowH + 30
	maxV := maxOf(values)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`,
		esc(title), chartW, h, chartW, h)
	fmt.Fprintf(&b, `<text x="4" y="14" class="t">%s</text>`, esc(title))
	labelW := 160
	for i, v := range values {
		y := 24 + i*rowH
		w := 0.0
		if maxV > 0 {
			w = v / maxV * float64(chartW-labelW-70)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="l" text-anchor="end">%s</text>`, labelW-6, y+12, esc(trunc(labels[i], 24)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" class="bar"><title>%s: %s</title></rect>`, labelW, y+2, math.Max(w, 1), rowH-4, esc(labels[i]), num(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="l">%s</text>`, float64(labelW)+math.Max(w, 1)+4, y+12, num(v))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Series is one line of a LineChart.
type Series struct {
	Name   string
	Values []float64
}

// LineChart draws one or more series over the same x positions (batches, runs, days).
func LineChart(title string, xLabels []string, series ...Series) template.HTML {
	n := 0
	var all []float64
	for _, s := range series {
		n = max(n, len(s.Values))
		all = append(all, s.Values...)
	}
	if n == 0 {
		return emptyChart(title)
	}
	maxV := maxOf(all)
	if maxV <= 0 {
		maxV = 1
	}
	plotW, plotH := float64(chartW-padL-10), float64(chartH-padB-24)
	x := func(i int) float64 {
		if n == 1 {
			return float64(padL) + plotW/2
		}
		return float64(padL) + float64(i)*plotW/float64(n-1)
	}
	y := func(v float64) float64 { return 24 + plotH - v/maxV*plotH }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`,
		esc(title), chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="4" y="14" class="t">%s</text>`, esc(title))
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="axis"/>`, padL, 24+plotH, chartW-10, 24+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="l" text-anchor="end">%s</text>`, padL-4, 30.0, num(maxV))
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="l" text-anchor="end">0</text>`, padL-4, 24+plotH)
	if len(xLabels) > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="l">%s</text>`, padL, chartH-6, esc(xLabels[0]))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="l" text-anchor="end">%s</text>`, chartW-10, chartH-6, esc(xLabels[len(xLabels)-1]))
	}
	for si, s := range series {
		var pts []string
		for i, v := range s.Values {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" class="s%d"/>`, strings.Join(pts, " "), si%4)
		for i, v := range s.Values {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" class="d%d"><title>%s %s</title></circle>`, x(i), y(v), si%4, esc(s.Name), num(v))
		}
		fmt.Fprintf(&b, `<text x="%d" y="14" class="l d%d" text-anchor="end">%s</text>`, chartW-10-si*140, si%4, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Histogram draws counts per bucket as vertical bars.
func Histogram(title string, buckets []string, counts []float64) template.HTML {
	if len(counts) == 0 {
		return emptyChart(title)
	}
	maxV := maxOf(counts)
	plotW, plotH := float64(chartW-padL-10), float64(chartH-padB-24)
	bw := plotW / float64(len(counts))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`,
		esc(title), chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="4" y="14" class="t">%s</text>`, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="30" class="l" text-anchor="end">%s</text>`, padL-4, num(maxV))
	for i, c := range counts {
		h := 0.0
		if maxV > 0 {
			h = c / maxV * plotH
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar"><title>%s: %s</title></rect>`,
			float64(padL)+float64(i)*bw+1, 24+plotH-h, math.Max(bw-2, 1), h, esc(buckets[i]), num(c))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="l">%s</text>`, padL, chartH-6, esc(buckets[0]))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="l" text-anchor="end">%s</text>`, chartW-10, chartH-6, esc(buckets[len(buckets)-1]))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func emptyChart(title string) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d 40" width="%d" height="40" xmlns="http://www.w3.org/2000/svg"><text x="4" y="14" class="t">%s</text><text x="4" y="32" class="l">no data yet</text></svg>`,
		esc(title), chartW, chartW, esc(title)))
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}

func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%d", int64(v))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func trunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func esc(s string) string { return template.HTMLEscapeString(s) }
