package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts 5 fields, 6 with leading seconds, and descriptors (@daily, @every 1h).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
	cron.Month | cron.Dow | cron.Descriptor)

// schedule is a cron schedule read on the wall clock of one zone.
//
// robfig/cron evaluates a spec on instants in the zone, which on DST days skips a run
// whose wall time falls in the spring-forward gap and runs twice in the repeated
// fall-back hour. Here the spec is evaluated on wall-clock times (as if UTC) and each
// wall time is then mapped to one instant: a time in the gap maps to the same wall time
// shifted by the gap (02:30 → 03:30 EDT), a repeated time maps to its first occurrence.
// So every wall-clock tick runs exactly once, and ticks that collapse onto one instant
// run once.
type schedule struct {
	spec *cron.SpecSchedule // Location = UTC, fed wall times
	// every is set for @every schedules, which are plain intervals on instants.
	every cron.Schedule
	loc   *time.Location
}

func parseSchedule(spec string, loc *time.Location) (*schedule, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("put the zone in the job's timezone field, not in the spec")
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, err
	}
	switch s := s.(type) {
	case *cron.SpecSchedule:
		c := *s
		c.Location = time.UTC
		// A spec that can never fire (Feb 30) returns zero from Next: refuse it now.
		if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			return nil, fmt.Errorf("never fires")
		}
		return &schedule{spec: &c, loc: loc}, nil
	default:
		return &schedule{every: s, loc: loc}, nil
	}
}

// wall reads t's wall clock in the zone as a UTC time.
func (s *schedule) wall(t time.Time) time.Time {
	t = t.In(s.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instant maps a wall time to an instant in the zone (see schedule).
func (s *schedule) instant(w time.Time) time.Time {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), s.loc)
	if s.wall(t).Equal(w) {
		// A repeated wall time (fall back) has two instants: take the first.
		for _, d := range []time.Duration{time.Hour, 30 * time.Minute} {
			if s.wall(t.Add(-d)).Equal(w) {
				return t.Add(-d)
			}
		}
		return t
	}
	// In the gap: Go's choice is unspecified; use the offset in force before the gap,
	// which lands the same distance past the gap's end.
	_, off := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), s.loc).Add(-3 * time.Hour).Zone()
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC).Add(-time.Duration(off) * time.Second)
}

// Next is the first tick strictly after t; zero if there is none.
func (s *schedule) Next(t time.Time) time.Time {
	if s.every != nil {
		return s.every.Next(t)
	}
	w := s.wall(t)
	for i := 0; i < 4; i++ { // at most a couple of ticks collapse onto one instant
		w = s.spec.Next(w)
		if w.IsZero() {
			return w
		}
		if in := s.instant(w); in.After(t) {
			return in
		}
	}
	return time.Time{}
}

// Prev is the last tick at or before t; zero if none in the 5 years before t.
func (s *schedule) Prev(t time.Time) time.Time {
	for back := time.Minute; back <= 5*366*24*time.Hour; back *= 2 {
		p := s.Next(t.Add(-back))
		if p.IsZero() || p.After(t) {
			continue
		}
		for {
			n := s.Next(p)
			if n.IsZero() || n.After(t) {
				return p
			}
			p = n
		}
	}
	return time.Time{}
}

// DS is the logical date of a run: its logical time's date in the zone.
func (s *schedule) DS(logical time.Time) string { return logical.In(s.loc).Format(time.DateOnly) }

// tsKey is the run's identity within a job: its logical time in UTC, file-name safe.
func tsKey(logical time.Time) string { return logical.UTC().Format("20060102T150405Z") }
