package jobs

import (
	"testing"
	"time"
)

func ticks(s *schedule, from, to time.Time) []time.Time {
	var out []time.Time
	for t := s.Next(from.Add(-time.Nanosecond)); !t.IsZero() && t.Before(to); t = s.Next(t) {
		out = append(out, t)
	}
	return out
}

// On wall-clock terms every tick happens once: a daily 02:30 on the spring-forward day
// fires at 03:30 EDT; 01:30 on the fall-back day fires once (the first 01:30); an hourly
// job has 23 runs on the short day and 24 on the long one.
func TestScheduleDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	mk := func(spec string) *schedule {
		s, err := parseSchedule(spec, ny)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	spring := time.Date(2026, 3, 8, 0, 0, 0, 0, ny)
	fall := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	got := ticks(mk("30 2 * * *"), spring, spring.Add(24*time.Hour))
	if len(got) != 1 || !got[0].Equal(time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)) {
		t.Errorf("spring 02:30: %v", got)
	}
	got = ticks(mk("30 1 * * *"), fall, fall.Add(25*time.Hour))
	if len(got) != 1 || !got[0].Equal(time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)) {
		t.Errorf("fall 01:30: %v", got)
	}
	if n := len(ticks(mk("0 * * * *"), spring, spring.Add(23*time.Hour))); n != 23 {
		t.Errorf("hourly on spring day: %d runs", n)
	}
	if n := len(ticks(mk("0 * * * *"), fall, fall.Add(25*time.Hour))); n != 24 {
		t.Errorf("hourly on fall day: %d runs", n)
	}
	// Every logical date of a daily job is a distinct, consecutive ds.
	d := mk("@daily")
	var last string
	for _, tk := range ticks(d, time.Date(2026, 1, 1, 0, 0, 0, 0, ny), time.Date(2027, 1, 1, 0, 0, 0, 0, ny)) {
		ds := d.DS(tk)
		if last != "" {
			prev, _ := time.Parse(time.DateOnly, last)
			if prev.AddDate(0, 0, 1).Format(time.DateOnly) != ds {
				t.Fatalf("ds %s follows %s", ds, last)
			}
		}
		last = ds
	}
	if last != "2026-12-31" {
		t.Errorf("last ds %s", last)
	}
	// Prev is the inverse of Next.
	for _, tk := range ticks(mk("0 * * * *"), fall.Add(-2*time.Hour), fall.Add(26*time.Hour)) {
		if p := mk("0 * * * *").Prev(tk.Add(time.Minute)); !p.Equal(tk) {
			t.Errorf("Prev(%v+1m) = %v", tk, p)
		}
	}
}

func TestScheduleSecondsAndEvery(t *testing.T) {
	s, err := parseSchedule("*/15 * * * * *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if n := s.Next(base); !n.Equal(base.Add(15 * time.Second)) {
		t.Errorf("seconds spec: %v", n)
	}
	e, err := parseSchedule("@every 90m", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.Next(base); !n.Equal(base.Add(90 * time.Minute)) {
		t.Errorf("@every: %v", n)
	}
	if _, err := parseSchedule("CRON_TZ=UTC 0 0 * * *", time.UTC); err == nil {
		t.Error("CRON_TZ in spec accepted")
	}
}
