//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seed is $E2E_SEED (default 1): it picks the moments of the kills.
func seed(t *testing.T) uint64 {
	s := uint64(1)
	if v := os.Getenv("E2E_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("E2E_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("E2E_SEED=%d (set it to replay these kill moments)", s)
	return s
}

// TestFaultRound kills the collector, then the broker, then the streaming process with
// SIGKILL, once each, at seeded moments while the inputs flow; restarts each; and checks
// that dwd_events ends with every input event exactly once and that ods_events and
// dlq_events agree with the topic.
//
//   - collector: killed once the topic holds a seeded 15–70% of ratings.csv's lines (the
//     spooldir source is mid-file, the file channel holds un-acked events);
//   - broker: once the restarted collector's channel has drained (the topic's surplus over
//     ratings.csv is what the collector's kill duplicated), the Taobao log is dropped and
//     the broker is killed once a seeded 10–60% of it is in the topic (the collector is
//     mid-delivery, streaming mid-fetch), then restarted after a seeded 0.5–2s;
//   - streaming: killed once its records counter reaches a seeded 30–70% of all events
//     since its start (mid-batch or between batches), then restarted.
func TestFaultRound(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0x7a67706970))
	c := newCluster(t)
	in := loadInputs(t, c, 20000)
	total := int64(in.nRatings + in.nTaobao)
	lines := int64(in.ratingLines + in.nTaobao)
	c.startAll()
	ingest, broker, stream := c.procs["ingest"], c.procs["broker"], c.procs["stream"]

	// The topic exists before the first line so the test sees it fill from the start
	// (auto-creation would hide the first seconds of delivery).
	if out, err := c.tagpipe(time.Minute, "topics", "create", "--topic", "events", "--partitions", "6"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	// Collector.
	f1 := 0.15 + 0.55*rng.Float64()
	at1 := int64(f1 * float64(in.ratingLines))
	c.drop("movielens-ratings.csv", in.ratings)
	var seen int64
	waitFor(t, fmt.Sprintf("%.0f%% of ratings.csv in the topic", f1*100), 3*time.Minute, 10*time.Millisecond, func() (bool, string, error) {
		n, err := c.endOffsets("events")
		if err != nil {
			return false, err.Error(), nil
		}
		seen = n
		return n >= at1, fmt.Sprintf("%d records (kill at %d)", n, at1), nil
	})
	ingest.kill9()
	t.Logf("kill -9 collector with %d of %d ratings lines in the topic", seen, in.ratingLines)
	if seen >= int64(in.ratingLines) {
		t.Logf("note: the collector had delivered the whole file before the kill landed")
	}
	ingest.run()
	ingest.waitReady(90 * time.Second)

	// Broker.
	f2 := 0.10 + 0.50*rng.Float64()
	pause := time.Duration(500+rng.IntN(1500)) * time.Millisecond
	waitFor(t, "ratings.csv completed by the collector", 3*time.Minute, 50*time.Millisecond, func() (bool, string, error) {
		_, err := os.Stat(filepath.Join(c.data, "spool", "events", "movielens-ratings.csv.COMPLETED"))
		return err == nil, "spooldir renames it .COMPLETED", nil
	})
	// The collector's channel drains into the topic; then whatever the topic holds beyond
	// ratings.csv's lines was delivered twice because of the collector's kill.
	var base int64
	waitFor(t, "the collector's channel drained", 3*time.Minute, 50*time.Millisecond, func() (bool, string, error) {
		pending, ok := ingest.metric("tagpipe_ingest_channel_events{")
		n, err := c.endOffsets("events")
		if err != nil {
			return false, err.Error(), nil
		}
		base = n
		return ok && pending == 0 && n >= int64(in.ratingLines), fmt.Sprintf("%.0f events in the channel, %d in the topic", pending, n), nil
	})
	dupCollector := base - int64(in.ratingLines)
	t.Logf("after the collector's kill -9 and restart: %d ratings lines delivered twice", dupCollector)
	at2 := base + int64(f2*float64(in.nTaobao))
	c.drop("taobao-behaviour.log", in.taobao)
	waitFor(t, fmt.Sprintf("%.0f%% of the Taobao log in the topic", f2*100), 3*time.Minute, 10*time.Millisecond, func() (bool, string, error) {
		n, err := c.endOffsets("events")
		if err != nil {
			return false, err.Error(), nil
		}
		seen = n
		return n >= at2, fmt.Sprintf("%d records (kill at %d)", n, at2), nil
	})
	broker.kill9()
	t.Logf("kill -9 broker with %d records in the topic (%d from the Taobao log of %d); restart in %v", seen, seen-base, in.nTaobao, pause)
	time.Sleep(pause)
	broker.run()
	broker.waitReady(90 * time.Second)

	// Streaming. Its records counter moves once per batch, so the kill waits a seeded
	// 0–3s more to land inside the next batch as often as between two.
	f3 := 0.30 + 0.40*rng.Float64()
	at3 := f3 * float64(total)
	lag3 := time.Duration(rng.IntN(3000)) * time.Millisecond
	var recs float64
	waitFor(t, fmt.Sprintf("streaming at %.0f%% of the events", f3*100), 10*time.Minute, 20*time.Millisecond, func() (bool, string, error) {
		if stream.exited() {
			return false, "", fmt.Errorf("stream exited: %s", tail(stream.logPath, 20))
		}
		v, ok := stream.metric("tagpipe_streaming_records_total{")
		if ok {
			recs = v
		}
		return ok && v >= at3, fmt.Sprintf("%.0f records (kill at %.0f)", v, at3), nil
	})
	time.Sleep(lag3)
	stream.kill9()
	t.Logf("kill -9 streaming %v after it had stored %.0f of %d records", lag3, recs, total)
	stream.run()
	stream.waitReady(90 * time.Second)

	end := drainAndCheck(t, c, in, "dwd_events after the kills")
	if end > lines {
		t.Logf("of the %d lines delivered twice to the topic, %d were after the collector's own kill -9, %d after the broker's",
			end-lines, dupCollector, end-lines-dupCollector)
	}
	if t.Failed() {
		t.Logf("kill moments: collector at %.2f of ratings.csv, broker at %.2f of the Taobao log (pause %v), streaming at %.2f",
			f1, f2, pause, f3)
		t.Log(strings.Repeat("-", 20))
	}
	c.stopAll()
}

// drainAndCheck waits until the collector has completed both input files and the
// topic no longer grows while ods_events holds all of it, then checks what the pipeline
// guarantees: ods_events holds each topic record once, only the ratings header
// unparsed and no dead letters; dwd_events every input event exactly once, copies the
// collector delivered twice (at-least-once) dropped by event_id. It returns the topic's
// end offset.
func drainAndCheck(t *testing.T, c *cluster, in *inputs, what string) int64 {
	t.Helper()
	total := int64(in.nRatings + in.nTaobao)
	lines := int64(in.ratingLines + in.nTaobao)
	waitFor(t, "both files completed", 3*time.Minute, 100*time.Millisecond, func() (bool, string, error) {
		_, err := os.Stat(filepath.Join(c.data, "spool", "events", "taobao-behaviour.log.COMPLETED"))
		return err == nil, "spooldir renames it .COMPLETED", nil
	})
	var end int64
	stable := 0
	waitFor(t, "ods_events holding the whole topic", 10*time.Minute, 2*time.Second, func() (bool, string, error) {
		e, err := c.endOffsets("events")
		if err != nil {
			return false, err.Error(), nil
		}
		n, err := c.count("SELECT count(*) FROM ods_events")
		if err != nil {
			return false, err.Error(), nil
		}
		if e == end && n == e && e >= lines {
			stable++
		} else {
			stable = 0
		}
		end = e
		return stable >= 2, fmt.Sprintf("topic %d records, ods_events %d rows", e, n), nil
	})
	t.Logf("topic events: %d records for %d lines (%d delivered twice by the collector)", end, lines, end-lines)
	row := c.mustQuery(`SELECT count(*), count(DISTINCT (partition, "offset")), count(*) FILTER (WHERE NOT parsed) FROM ods_events`)[0]
	if row[0] != itoa(end) || row[1] != itoa(end) {
		t.Errorf("ods_events: %s rows, %s distinct offsets; want the topic's %d records once each", row[0], row[1], end)
	}
	headers := c.mustCount("SELECT count(*) FROM ods_events WHERE NOT parsed AND raw LIKE '" + ratingsHeader + "%'")
	if row[2] != itoa(headers) || headers < 1 {
		t.Errorf("ods_events: %s unparsed rows, %d of them the ratings header; want only header rows, at least 1", row[2], headers)
	}
	if n := c.mustCount("SELECT count(*) FROM dlq_events"); n != 0 {
		t.Errorf("dlq_events holds %d rows, want 0: %v", n, c.mustQuery("SELECT raw, reason FROM dlq_events LIMIT 5"))
	}
	got, n := dwdMultiset(t, c)
	want := multiset(in.events)
	t.Run("no_loss", func(t *testing.T) {
		lost := 0
		for k, w := range want {
			if got[k] < w {
				lost += w - got[k]
			}
		}
		if lost > 0 {
			compareMultisets(t, what, want, got)
		}
	})
	t.Run("streaming_exactly_once", func(t *testing.T) {
		// Streaming turns the topic into tables exactly once: ods_events holds each topic
		// record once (checked above), dwd_events no record twice. Copies the collector
		// delivered (same event_id header) are dropped there, not in ods.
		if d := c.mustCount(`SELECT count(DISTINCT (partition, "offset")) FROM dwd_events`); d != int64(n) {
			t.Errorf("dwd_events has %d rows but %d distinct offsets", n, d)
		}
		if ids := c.mustCount("SELECT count(DISTINCT event_id) FROM dwd_events"); ids != int64(n) {
			t.Errorf("dwd_events has %d rows but %d distinct event ids", n, ids)
		}
	})
	t.Run("every_input_line_exactly_once", func(t *testing.T) {
		if int64(n) != total {
			t.Errorf("dwd_events holds %d rows, want %d", n, total)
		}
		if d := c.mustCount("SELECT count(DISTINCT (user_id, item_id, event_time, action)) FROM dwd_events"); d != int64(len(want)) {
			t.Errorf("dwd_events holds %d distinct (user_id, item_id, event_time, action), the inputs %d", d, len(want))
		}
		compareMultisets(t, what, want, got)
	})
	return end
}
