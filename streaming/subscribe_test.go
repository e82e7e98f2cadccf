package streaming

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// A topic pattern (Spark's subscribePattern) reads every topic whose whole name matches,
// including one created while the engine runs (from its start), and no other.
func TestEngineTopicPattern(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) {
			addrs := testkafka.Start(t, backend, "events.web", 2)
			adm := admin(t, addrs)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, topic := range []string{"events.app", "xevents.app", "events.app.old"} {
				if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
					t.Fatal(err)
				}
			}
			put := func(topic string, parts, n int) {
				recs := make([]testkafka.Record, n)
				for i := range recs {
					recs[i] = testkafka.Record{Partition: int32(i % parts), Value: fmt.Appendf(nil, "%s-%d", topic, i)}
				}
				testkafka.Produce(t, addrs, topic, recs)
			}
			put("events.web", 2, 40)
			put("events.app", 1, 10)
			put("xevents.app", 1, 5)
			put("events.app.old", 1, 5)

			col := newCollected()
			o := engineOpts(addrs, t.TempDir())
			o.Topics, o.TopicPattern = nil, regexp.MustCompile(`events\.(web|app|new)`)
			o.OnBatch = col.onBatch
			e := startEngine(t, collectJob(col, 10*time.Millisecond), o)
			col.waitTotal(t, e, 50)

			// A topic created later is picked up and read from its start.
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, "events.new"); err != nil {
				t.Fatal(err)
			}
			put("events.new", 1, 7)
			col.waitTotal(t, e, 57)
			if err := e.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			perTopic := map[string]int{}
			for _, rs := range col.byBatch {
				for _, r := range rs {
					perTopic[r.Topic]++
				}
			}
			if want := map[string]int{"events.web": 40, "events.app": 10, "events.new": 7}; fmt.Sprint(perTopic) != fmt.Sprint(want) {
				t.Fatalf("records per topic %v, want %v", perTopic, want)
			}
		})
	}
}

func TestEngineTopicsOrPattern(t *testing.T) {
	o := engineOpts([]string{"127.0.0.1:1"}, t.TempDir())
	o.TopicPattern = regexp.MustCompile("events.*")
	if _, err := New(NewJob("x", time.Second), o); err == nil {
		t.Fatal("topics and a pattern both set: no error")
	}
}

// StartingOffsets as a time (Spark's startingTimestamp): a job with nothing committed
// starts each partition at its first record at or after that time; a partition with
// none starts at its end and takes only what comes later.
func TestEngineStartingTimestamp(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) {
			addrs := testkafka.Start(t, backend, "events", 2)
			t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			var recs []testkafka.Record
			for i := range 30 {
				recs = append(recs, testkafka.Record{Partition: 0, Value: fmt.Appendf(nil, "p0-%d", i), Time: t0.Add(time.Duration(i) * time.Second)})
			}
			for i := range 5 {
				recs = append(recs, testkafka.Record{Partition: 1, Value: fmt.Appendf(nil, "p1-%d", i), Time: t0.Add(time.Duration(i) * time.Second)})
			}
			testkafka.Produce(t, addrs, "events", recs)

			col := newCollected()
			o := engineOpts(addrs, t.TempDir())
			o.StartingOffsets = t0.Add(10 * time.Second).Format(time.RFC3339)
			o.OnBatch = col.onBatch
			e := startEngine(t, collectJob(col, 10*time.Millisecond), o)
			col.waitTotal(t, e, 20)
			testkafka.Produce(t, addrs, "events", []testkafka.Record{{Partition: 1, Value: []byte("p1-later"), Time: t0}})
			col.waitTotal(t, e, 21)
			if err := e.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := offsetsByPartition(col)
			if len(got[0]) != 20 || got[0][0] != 10 || len(got[1]) != 1 || got[1][0] != 5 {
				t.Fatalf("offsets read %v: want partition 0 from 10, partition 1 only the record produced later (5)", got)
			}
		})
	}
	if err := ParseStartingOffsets("yesterday"); err == nil {
		t.Fatal("a bad starting offsets value was accepted")
	}
}

// StartingOffsets as Spark's JSON of offsets per partition: a job with nothing committed
// starts each listed partition there (-2 earliest, -1 latest, past the end: at the end),
// an unlisted one at its beginning; an offset below the log start is data loss.
func TestEngineStartingOffsetsJSON(t *testing.T) {
	addrs := newCluster(t, 4)
	produce(t, addrs, 4, 0, 40) // 10 records per partition
	col := newCollected()
	o := engineOpts(addrs, t.TempDir())
	o.StartingOffsets = `{"events":{"0":7,"1":-2,"2":-1,"3":99}}`
	o.OnBatch = col.onBatch
	e := startEngine(t, collectJob(col, 10*time.Millisecond), o)
	col.waitTotal(t, e, 3+10)
	produce(t, addrs, 4, 40, 4) // one more per partition
	col.waitTotal(t, e, 13+4)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := offsetsByPartition(col)
	if fmt.Sprint(got) != "map[0:[7 8 9 10] 1:[0 1 2 3 4 5 6 7 8 9 10] 2:[10] 3:[10]]" {
		t.Fatalf("offsets read %v", got)
	}

	// An offset retention already deleted: data loss, as any gap.
	adm := admin(t, addrs)
	deleteRecordsBefore(t, adm, 5)
	o = engineOpts(addrs, t.TempDir())
	o.StartingOffsets = `{"events":{"0":2}}`
	e = startEngine(t, collectJob(newCollected(), 10*time.Millisecond), o)
	expectLoss(t, e, DataLoss{TopicPartition: TopicPartition{"events", 0}, From: 2, Until: 5, Deleted: true})

	for _, bad := range []string{`{"events":{"x":1}}`, `{"events":{"0":-3}}`, `{"events":`} {
		if err := ParseStartingOffsets(bad); err == nil {
			t.Errorf("starting offsets %s accepted", bad)
		}
	}
}
