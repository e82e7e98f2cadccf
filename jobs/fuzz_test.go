package jobs

import (
	"testing"
	"time"
)

// FuzzSchedule: any spec either is refused or yields ticks that strictly increase, each
// mapping back to itself through Prev, in zones with and without DST.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"@daily", "30 2 * * *", "30 1 * * *", "0 * * * *", "*/7 * * * * *", "0 0 29 2 *",
		"@every 90m", "0 0 30 2 *", "", "* * *", "59 23 31 12 *", "0 2-3 * * 0"} {
		f.Add(s, int64(1772960000), uint8(0))
	}
	zones := []string{"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Shanghai"}
	f.Fuzz(func(t *testing.T, spec string, unix int64, zi uint8) {
		loc, err := time.LoadLocation(zones[int(zi)%len(zones)])
		if err != nil {
			t.Skip(err)
		}
		s, err := parseSchedule(spec, loc)
		if err != nil {
			return
		}
		t0 := time.Unix(unix%(4e9), 0)
		prev := t0
		for i := 0; i < 50; i++ {
			n := s.Next(prev)
			if n.IsZero() {
				return
			}
			if !n.After(prev) {
				t.Fatalf("%q: Next(%v) = %v, not after", spec, prev, n)
			}
			if s.every == nil {
				if p := s.Prev(n); !p.Equal(n) {
					t.Fatalf("%q: Prev(%v) = %v", spec, n, p)
				}
			}
			prev = n
		}
	})
}
