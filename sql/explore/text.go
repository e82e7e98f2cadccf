package explore

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText prints the terminal summary.
func (p *Profile) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "source: %s (%s", p.Source, p.Kind)
	if len(p.Files) > 0 {
		fmt.Fprintf(w, ", %d file", len(p.Files))
		if len(p.Files) != 1 {
			fmt.Fprint(w, "s")
		}
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "rows: %d", p.Rows)
	if p.Kind == "csv" || p.Kind == "jsonl" {
		fmt.Fprintf(w, " of %d lines; malformed: %d (%s)", p.Lines, p.Malformed, pct(p.MalformedRate))
		if p.Truncated {
			fmt.Fprint(w, " (first lines only: --max-lines)")
		}
	}
	fmt.Fprintln(w)
	if t := p.Time; t != nil {
		fmt.Fprintf(w, "time: %s (%s) %s .. %s, %d days with events", t.Column, t.Unit,
			t.Min.Format("2006-01-02 15:04:05"), t.Max.Format("2006-01-02 15:04:05"), t.Days)
		if b := busiest(t.PerDay); b.Day != "" {
			fmt.Fprintf(w, "; busiest %s (%d)", b.Day, b.Count)
		}
		fmt.Fprintln(w)
	}
	if u := p.Users; u != nil {
		fmt.Fprintf(w, "users: %s: %d users; events per user min %d, p25 %s, median %s, p75 %s, p90 %s, p99 %s, max %d, mean %s\n",
			u.Column, u.Users, u.Min, num(u.P25), num(u.Median), num(u.P75), num(u.P90), num(u.P99), u.Max, num(u.Mean))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "column\ttype\tnulls\tdistinct\tmin\tmax\tmean\ttop values")
	for _, c := range p.Columns {
		var top []string
		for i, v := range c.Top {
			if i == 3 {
				break
			}
			top = append(top, fmt.Sprintf("%s (%d)", short(v.Value, 24), v.Count))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", c.Name, c.Type, c.Nulls, c.Distinct, short(str(c.Min), 24),
			short(str(c.Max), 24), numText(c.Avg), strings.Join(top, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, r := range p.Rejects {
		if i == 0 {
			fmt.Fprintln(w, "malformed lines (samples):")
		}
		if r.Line > 0 {
			fmt.Fprintf(w, "  %s:%d: %s: %s\n", r.File, r.Line, r.Reason, short(r.Text, 80))
		} else {
			fmt.Fprintf(w, "  %s\n", r.Reason)
		}
	}
	return nil
}

func busiest(days []DayCount) DayCount {
	var b DayCount
	for _, d := range days {
		if d.Count > b.Count {
			b = d
		}
	}
	return b
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + "%" }

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// numText shortens SUMMARIZE's full-precision number text for display.
func numText(s *string) string {
	if s == nil {
		return ""
	}
	f, err := strconv.ParseFloat(*s, 64)
	if err != nil {
		return *s
	}
	return num(f)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func short(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", `\n`)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
