package agent

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

// TestKafkaSourceMirror runs a kafka source into a kafka sink on the same broker (topic
// in → topic out): keys and record headers come through, and the source's counters
// (commits included) are in the agent's metrics.
func TestKafkaSourceMirror(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			b := be.Start(t, t.TempDir(), 0, map[string]int32{"in": 2, "out": 1})
			t.Cleanup(b.Stop) // after the agent stops
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				r := &kgo.Record{Topic: "in", Key: []byte("u" + strconv.Itoa(i%7)), Value: []byte("v" + strconv.Itoa(i)),
					Headers: []kgo.RecordHeader{{Key: "app", Value: []byte("web")}}}
				if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			cl.Close()
			spec := Spec{Name: "m", Where: "ingest.agents.m",
				Sources: map[string]map[string]string{"k": {"type": "kafka", "channels": "c", "topics": "in",
					"group_id": "mirror", "auto_offset_reset": "earliest", "set_topic_header": "false",
					"batch_size": "30", "batch_duration": "50", "heartbeat_interval": "100ms", "session_timeout": "10s"}},
				Channels: map[string]map[string]string{"c": {"type": "memory"}},
				Sinks:    map[string]map[string]string{"out": {"type": "kafka", "channel": "c", "topic": "out"}},
			}
			metrics := ingest.NewMetrics(nil)
			build(t, spec, Env{DataDir: t.TempDir(), Brokers: []string{b.Addr()}, Metrics: metrics})
			kafkatest.WaitCount(t, b.Addr(), "out", 100, 30*time.Second)
			seen := map[string]bool{}
			for _, r := range kafkatest.ReadAll(t, b.Addr(), "out") {
				n, _ := strconv.Atoi(strings.TrimPrefix(r.Value, "v"))
				if r.Key != "u"+strconv.Itoa(n%7) || r.Headers["app"] != "web" || r.Headers["partition"] == "" ||
					r.Headers["offset"] == "" || r.Headers["topic"] != "" || r.Headers["event_id"] == "" {
					t.Fatalf("record %+v", r)
				}
				seen[r.Value] = true
			}
			if len(seen) != 100 {
				t.Fatalf("%d distinct records in out", len(seen))
			}
			waitFor(t, "commits in the source's counters", func() bool {
				for _, s := range metrics.Snapshot() {
					if s.Kind == "source" && s.Name == "k" && s.Type == "kafka" && s.Counters["accepted"] == 100 && s.Counters["commits"] > 0 {
						return true
					}
				}
				return false
			})
		})
	}
}

// TestKafkaSourceChecked: keys named in errors, and the loop guard: a kafka source may
// not read what a kafka sink of its agent writes on the same brokers.
func TestKafkaSourceChecked(t *testing.T) {
	build := func(env Env, sources, sinks map[string]map[string]string) error {
		for _, s := range sources {
			s["type"], s["channels"] = "kafka", "c"
		}
		for _, s := range sinks {
			s["type"], s["channel"] = "kafka", "c"
		}
		spec := Spec{Name: "a1", Where: "ingest.agents.a1", Sources: sources, Sinks: sinks,
			Channels: map[string]map[string]string{"c": {"type": "memory"}, "d": {"type": "memory"}}}
		a, err := Build(spec, env)
		if err == nil {
			a.Stop(context.Background())
		}
		return err
	}
	env := Env{DataDir: t.TempDir(), Brokers: []string{"127.0.0.1:9092"}}
	for name, tc := range map[string]struct {
		env     Env
		sources map[string]map[string]string
		sinks   map[string]map[string]string
		want    []string // "" = builds
	}{
		"keys": {env: Env{}, sources: map[string]map[string]string{
			"k1": {"topicz": "x"},
			"k2": {"brokers": "b:1", "topics": "x", "topics_regex": "x.*", "auto_offset_reset": "none", "batch_duration": "soon"},
		}, want: []string{
			`ingest.agents.a1.sources.k1.brokers: is required`,
			`ingest.agents.a1.sources.k1.topics: is required (or topics_regex)`,
			`ingest.agents.a1.sources.k1.topicz: unknown key for kafka source (did you mean "topics"?)`,
			`ingest.agents.a1.sources.k2.topics_regex: set topics or topics_regex, not both`,
			`ingest.agents.a1.sources.k2.auto_offset_reset: bad value "none": want one of latest, earliest`,
			`ingest.agents.a1.sources.k2.batch_duration: bad value "soon"`,
		}},
		"same topic": {env: env, sources: map[string]map[string]string{"k": {"topics": "events", "set_topic_header": "false"}},
			sinks: map[string]map[string]string{"out": {"topic": "events"}},
			want:  []string{`ingest.agents.a1.sources.k.topics: reads topic "events", which sink out of this agent writes to on the same brokers: a loop`}},
		"regex and dead letters": {env: env, sources: map[string]map[string]string{"k": {"topics_regex": "ev.*", "set_topic_header": "false"}},
			sinks: map[string]map[string]string{"out": {"topic": "other", "dead_letter_topic": "ev_dlq"}},
			want:  []string{`ingest.agents.a1.sources.k.topics_regex: reads topic "ev_dlq", which sink out`}},
		"topic header": {env: env, sources: map[string]map[string]string{"k": {"topics": "in"}},
			sinks: map[string]map[string]string{"out": {"topic": "out"}},
			want:  []string{`ingest.agents.a1.sources.k.set_topic_header: the "topic" header makes sink out (channel c) write each record back`}},
		"other header name":  {env: env, sources: map[string]map[string]string{"k": {"topics": "in", "topic_header": "kafka_topic"}}, sinks: map[string]map[string]string{"out": {"topic": "out"}}},
		"other brokers":      {env: env, sources: map[string]map[string]string{"k": {"topics": "events", "brokers": "other:9092"}}, sinks: map[string]map[string]string{"out": {"topic": "events"}}},
		"regex, whole names": {env: env, sources: map[string]map[string]string{"k": {"topics_regex": "ev", "set_topic_header": "false"}}, sinks: map[string]map[string]string{"out": {"topic": "events"}}},
	} {
		t.Run(name, func(t *testing.T) {
			err := build(tc.env, tc.sources, tc.sinks)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("built")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
