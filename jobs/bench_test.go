package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// BenchmarkScheduleNext: the DST-safe wall-clock Next against robfig/cron's own.
func BenchmarkScheduleNext(b *testing.B) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		b.Skip(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, ny)
	b.Run("tagpipe", func(b *testing.B) {
		s, _ := parseSchedule("30 2 * * *", ny)
		b.ReportAllocs()
		t := t0
		for i := 0; i < b.N; i++ {
			t = s.Next(t)
		}
	})
	b.Run("robfig", func(b *testing.B) {
		s, _ := cron.ParseStandard("CRON_TZ=America/New_York 30 2 * * *")
		b.ReportAllocs()
		t := t0
		for i := 0; i < b.N; i++ {
			t = s.Next(t)
		}
	})
}

// BenchmarkStoreAppend: one durable (fsynced) history record.
func BenchmarkStoreAppend(b *testing.B) {
	s, err := OpenStore(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := s.Append(Record{Job: "j", DS: "2026-01-01", Logical: l.Add(time.Duration(i%1000) * time.Hour), State: StateSuccess}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunOverhead: the scheduler's cost around a task that does nothing (run lock,
// history records, attempt log file).
func BenchmarkRunOverhead(b *testing.B) {
	k := NewKinds()
	k.Register("func", BuiltinKind(map[string]TaskFunc{"noop": func(context.Context, RunContext) (int64, error) { return 0, nil }}))
	d := Def{Name: "noop", Schedule: "@hourly", Task: TaskSpec{Kind: "func", Name: "noop"}}
	dag, err := Compile([]Def{d}, k, DefaultDefaults())
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(dag, Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	j, _ := dag.Job("noop")
	l := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.execute(context.Background(), j, l.Add(time.Duration(i)*time.Hour), TriggerManual, true, nil); err != nil {
			b.Fatal(err)
		}
	}
}
