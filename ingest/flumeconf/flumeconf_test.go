package flumeconf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/agent"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReadProperties(t *testing.T) {
	in := "# comment\n! also\n  a.b = c d  \nx:y\nlong = one \\\n    two\nesc = tab\\there\nempty=\nspace value\n"
	got, err := ReadProperties(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.b": "c d", "x": "y", "long": "one two", "esc": "tab\there", "empty": "", "space": "value"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
}

// flumeFile is a Flume user's agent file, as the Flume user guide writes them.
const flumeFile = `
a1.sources = r1 r2
a1.channels = c1
a1.sinks = k1

a1.sources.r1.type = TAILDIR
a1.sources.r1.channels = c1
a1.sources.r1.positionFile = {{dir}}/taildir_position.json
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {{dir}}/logs/.*\.log
a1.sources.r1.headers.f1.headerKey1 = value1
a1.sources.r1.fileHeader = true
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = regex_extractor
a1.sources.r1.interceptors.i2.regex = ^user=(\\w+)
a1.sources.r1.interceptors.i2.serializers = s1
a1.sources.r1.interceptors.i2.serializers.s1.name = key

a1.sources.r2.type = spooldir
a1.sources.r2.channels = c1
a1.sources.r2.spoolDir = {{dir}}/spool
a1.sources.r2.fileHeader = true
a1.sources.r2.deserializer.maxLineLength = 2048
a1.sources.r2.pollDelay = 10

a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {{dir}}/checkpoint
a1.channels.c1.dataDirs = {{dir}}/data
a1.channels.c1.minimumRequiredSpace = -1

a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.topic = flume-events
a1.sinks.k1.kafka.bootstrap.servers = {{broker}}
a1.sinks.k1.flumeBatchSize = 20
a1.sinks.k1.kafka.producer.acks = -1
a1.sinks.k1.kafka.producer.linger.ms = 1
a1.sinks.k1.kafka.producer.compression.type = snappy
`

// TestFlumeAgentRuns runs a Flume agent file as-is against a real broker.
func TestFlumeAgentRuns(t *testing.T) {
	be := kafkatest.Backends()[0]
	b := be.Start(t, t.TempDir(), 0, map[string]int32{"flume-events": 2})
	defer b.Stop()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o755)
	text := strings.NewReplacer("{{dir}}", dir, "{{broker}}", b.Addr()).Replace(flumeFile)
	path := filepath.Join(dir, "agent.properties")
	os.WriteFile(path, []byte(text), 0o644)
	spec, err := ParseFile(path, "a1")
	if err != nil {
		t.Fatal(err)
	}
	spec.Sources["r2"]["min_age"] = "-1ms" // a test-only tagpipe key: no waiting for file age
	a, err := agent.Build(spec, agent.Env{DataDir: dir, Metrics: ingest.NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	os.WriteFile(filepath.Join(dir, "logs", "app.log"), []byte("user=ann clicked\nuser=bob viewed\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "spool", ".x"), []byte("spooled\n"), 0o644)
	os.Rename(filepath.Join(dir, "spool", ".x"), filepath.Join(dir, "spool", "x.log"))
	kafkatest.WaitCount(t, b.Addr(), "flume-events", 3, 30*time.Second)
	recs := kafkatest.ReadAll(t, b.Addr(), "flume-events")
	byValue := map[string]kafkatest.Record{}
	for _, r := range recs {
		byValue[r.Value] = r
	}
	ann := byValue["user=ann clicked"]
	if ann.Key != "ann" || ann.Headers["headerKey1"] != "value1" || ann.Headers["timestamp"] == "" || !strings.HasSuffix(ann.Headers["file"], "app.log") {
		t.Fatalf("taildir record = %+v", ann)
	}
	if r, ok := byValue["spooled"]; !ok || !strings.HasSuffix(r.Headers["file"], "x.log") {
		t.Fatalf("spooldir record missing: %+v", recs)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "checkpoint")); err != nil && !hasWal(filepath.Join(dir, "data")) {
		t.Fatalf("file channel not in dataDirs: %v", err)
	}
}

func hasWal(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "log-*.wal"))
	return len(m) > 0
}

func TestFlumeRejectsUnsupported(t *testing.T) {
	text := `
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = avro
a1.sources.r1.bind = 0.0.0.0
a1.sources.r1.channels = c1
a1.channels.c1.type = jdbc
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.producer.acks = 2
a1.sinks.k1.kafka.producer.buffer.memory = 1
a1.sinks.k2.type = hdfs
a1.sinkgroups.g1.processor.type = org.example.MyProcessor
a1.sinks.k9.type = logger
a2.sources = x
`
	props, _ := ReadProperties(strings.NewReader(text))
	_, err := Convert(props, "a1")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`a1.sources.r1.type: unsupported source type "avro"`,
		`a1.channels.c1.type: unsupported channel type "jdbc"`,
		`a1.sinks.k1.kafka.producer.acks: want -1, all, 1 or 0, not "2" (tagpipe always produces with acks=all)`,
		`a1.sinks.k1.kafka.producer.buffer.memory: unsupported key`,
		`a1.sinks.k2.type: unsupported sink type "hdfs"`,
		`a1.sinkgroups.g1.processor.type: unsupported sink processor "org.example.MyProcessor"`,
		`a1.sinks.k9.type: sink "k9" is not declared in a1.sinks`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Convert(props, "nope"); err == nil || !strings.Contains(err.Error(), `no agent "nope" in the file (it has: a1, a2)`) {
		t.Fatalf("unknown agent: %v", err)
	}
}

// TestFlumeKafkaSinkNames converts the KafkaSink example of the Flume user guide as it
// is printed (kafka.flumeBatchSize, acks = 1) and a Flume 1.6 sink (brokerList, topic,
// batchSize, requiredAcks), which later Flumes still read when the new names are unset.
func TestFlumeKafkaSinkNames(t *testing.T) {
	for _, tc := range []struct {
		name, sink string
		want       map[string]string
	}{
		{"user guide", `
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.kafka.topic = mytopic
a1.sinks.k1.kafka.bootstrap.servers = localhost:9092
a1.sinks.k1.kafka.flumeBatchSize = 20
a1.sinks.k1.kafka.producer.acks = 1
a1.sinks.k1.kafka.producer.linger.ms = 1
a1.sinks.k1.kafka.producer.compression.type = snappy
`, map[string]string{"topic": "mytopic", "brokers": "localhost:9092", "batch_size": "20", "linger": "1", "compression": "snappy"}},
		{"flume 1.6 names", `
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.topic = test
a1.sinks.k1.brokerList = localhost:9092
a1.sinks.k1.requiredAcks = 1
a1.sinks.k1.batchSize = 20
`, map[string]string{"topic": "test", "brokers": "localhost:9092", "batch_size": "20"}},
		{"new names win", `
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.topic = old
a1.sinks.k1.kafka.topic = new
a1.sinks.k1.brokerList = old:9092
a1.sinks.k1.kafka.bootstrap.servers = new:9092
a1.sinks.k1.batchSize = 1
a1.sinks.k1.kafka.flumeBatchSize = 2
a1.sinks.k1.flumeBatchSize = 3
`, map[string]string{"topic": "new", "brokers": "new:9092", "batch_size": "3"}},
		{"batchSize before kafka.flumeBatchSize", `
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.kafka.topic = t
a1.sinks.k1.batchSize = 7
a1.sinks.k1.kafka.flumeBatchSize = 9
`, map[string]string{"topic": "t", "batch_size": "7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n" +
				"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 44444\na1.sources.r1.channels = c1\n" +
				"a1.channels.c1.type = memory\na1.sinks.k1.channel = c1\n" + tc.sink
			props, err := ReadProperties(strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Convert(props, "a1")
			if err != nil {
				t.Fatal(err)
			}
			got := spec.Sinks["k1"]
			want := map[string]string{"type": "kafka", "channel": "c1"}
			for k, v := range tc.want {
				want[k] = v
			}
			if len(got) != len(want) {
				t.Errorf("sink = %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("sink[%q] = %q, want %q (sink %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// A load_balance sink group converts with its selector, backoff and maxTimeOut.
func TestFlumeLoadBalanceGroup(t *testing.T) {
	text := `
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 0
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
a1.sinks.k2.type = logger
a1.sinks.k2.channel = c1
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = LOAD_BALANCE
a1.sinkgroups.g1.processor.selector = Random
a1.sinkgroups.g1.processor.backoff = true
a1.sinkgroups.g1.processor.selector.maxTimeOut = 10000
`
	props, _ := ReadProperties(strings.NewReader(text))
	spec, err := Convert(props, "a1")
	if err != nil {
		t.Fatal(err)
	}
	g := spec.SinkGroups["g1"]
	want := map[string]string{"sinks": "k1 k2", "processor.type": "load_balance", "processor.selector": "random",
		"processor.backoff": "true", "processor.selector.max_timeout": "10000"}
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("group %v, want %v", g, want)
	}
}

// An exec source converts with Flume's keys (times in milliseconds) and runs into a
// file_roll sink.
func TestFlumeExecSource(t *testing.T) {
	dir := t.TempDir()
	text := `
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.shell = /bin/sh -c
a1.sources.r1.command = for i in 1 2 3; do echo line $i; done
a1.sources.r1.restart = false
a1.sources.r1.restartThrottle = 500
a1.sources.r1.logStdErr = true
a1.sources.r1.batchSize = 2
a1.sources.r1.batchTimeout = 100
a1.sources.r1.charset = UTF-8
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = host
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = ` + filepath.Join(dir, "out") + "\n"
	want := map[string]string{"type": "exec", "shell": "/bin/sh -c", "command": "for i in 1 2 3; do echo line $i; done",
		"restart": "false", "restart_throttle": "500", "log_stderr": "true", "batch_size": "2", "batch_timeout": "100",
		"channels": "c1", "interceptors": "i1", "interceptors.i1.type": "host"}
	props := convertAndRun(t, text, dir, want)
	waitRolled(t, filepath.Join(dir, "out"), "line 1\nline 2\nline 3\n")

	props["a1.sources.r1.charset"] = "ISO-8859-1"
	if _, err := Convert(props, "a1"); err == nil || !strings.Contains(err.Error(), `a1.sources.r1.charset: only UTF-8 output is supported, not "ISO-8859-1"`) {
		t.Fatalf("charset: %v", err)
	}
}

// A KafkaSource converts with Flume's keys (kafka.consumer.* ones tagpipe has, the
// deprecated topic/groupId when their successors are absent, no-ops dropped) and runs:
// records of the topic reach a file_roll sink.
func TestFlumeKafkaSource(t *testing.T) {
	b := kafkatest.Backends()[0].Start(t, t.TempDir(), 0, map[string]int32{"clicks": 1})
	t.Cleanup(b.Stop) // after the agent stops
	dir := t.TempDir()
	text := `
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = ` + b.Addr() + `
a1.sources.r1.kafka.topics = clicks
a1.sources.r1.kafka.consumer.group.id = flume-clicks
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.kafka.consumer.heartbeat.interval.ms = 100
a1.sources.r1.kafka.consumer.session.timeout.ms = 10000
a1.sources.r1.batchSize = 2
a1.sources.r1.batchDurationMillis = 50
a1.sources.r1.setTopicHeader = true
a1.sources.r1.topicHeader = kafka_topic
a1.sources.r1.backoffSleepIncrement = 100
a1.sources.r1.migrateZookeeperOffsets = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = ` + filepath.Join(dir, "out") + "\n"
	want := map[string]string{"type": "kafka", "brokers": b.Addr(), "topics": "clicks", "group_id": "flume-clicks",
		"auto_offset_reset": "earliest", "heartbeat_interval": "100", "session_timeout": "10000", "batch_size": "2",
		"batch_duration": "50", "set_topic_header": "true", "topic_header": "kafka_topic", "channels": "c1"}
	convertAndRun(t, text, dir, want)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"one", "two", "three"} {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "clicks", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	waitRolled(t, filepath.Join(dir, "out"), "one\ntwo\nthree\n")

	// Deprecated keys, a regex that wins over the list, and what is refused.
	old := map[string]string{"a1.sources": "r1", "a1.channels": "c1", "a1.channels.c1.type": "memory",
		"a1.sources.r1.channels": "c1", "a1.sources.r1.type": "org.apache.flume.source.kafka.KafkaSource",
		"a1.sources.r1.kafka.bootstrap.servers": "h:9092", "a1.sources.r1.topic": "old", "a1.sources.r1.groupId": "g"}
	spec, err := Convert(old, "a1")
	if err != nil || spec.Sources["r1"]["topics"] != "old" || spec.Sources["r1"]["group_id"] != "g" {
		t.Fatalf("deprecated keys: %v %v", spec.Sources["r1"], err)
	}
	old["a1.sources.r1.kafka.topics"], old["a1.sources.r1.kafka.topics.regex"] = "a,b", "logs.*"
	spec, err = Convert(old, "a1")
	if err != nil || spec.Sources["r1"]["topics_regex"] != "logs.*" || spec.Sources["r1"]["topics"] != "" {
		t.Fatalf("regex over list: %v %v", spec.Sources["r1"], err)
	}
	bad := map[string]string{"a1.sources": "r1", "a1.sources.r1.type": "org.apache.flume.source.kafka.KafkaSource",
		"a1.sources.r1.zookeeperConnect": "zk:2181", "a1.sources.r1.useFlumeEventFormat": "true",
		"a1.sources.r1.kafka.consumer.security.protocol": "SASL_SSL", "a1.sources.r1.kafka.consumer.auto.offset.reset": "none"}
	_, err = Convert(bad, "a1")
	for _, w := range []string{
		`a1.sources.r1.zookeeperConnect: finding brokers through ZooKeeper is not supported; set kafka.bootstrap.servers`,
		`a1.sources.r1.kafka.topics: is required (or kafka.topics.regex)`,
		`a1.sources.r1.useFlumeEventFormat: the Avro Flume event format is not supported`,
		`a1.sources.r1.kafka.consumer.sasl.mechanism: is required (Kafka's default, GSSAPI, is not supported`,
		`a1.sources.r1.kafka.consumer.auto.offset.reset: want latest or earliest, not "none"`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// convertAndRun converts agent a1 of text, checks that source r1 became want and runs
// the agent until the test ends.
func convertAndRun(t *testing.T, text, dir string, want map[string]string) map[string]string {
	t.Helper()
	props, _ := ReadProperties(strings.NewReader(text))
	spec, err := Convert(props, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(spec.Sources["r1"]) != fmt.Sprint(want) {
		t.Fatalf("source %v, want %v", spec.Sources["r1"], want)
	}
	a, err := agent.Build(spec, agent.Env{DataDir: dir, Metrics: ingest.NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	return props
}

// waitRolled waits until the file_roll files in dir hold want.
func waitRolled(t *testing.T, dir, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		var got string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			got += string(b)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("file_roll output: %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Flume's search_replace and remove_header interceptors convert (class names and short
// names) and run: the exec source's lines reach file_roll rewritten; a separator or
// charset tagpipe does not take is refused by key.
func TestFlumeSearchReplaceRemoveHeader(t *testing.T) {
	dir := t.TempDir()
	text := `
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.shell = /bin/sh -c
a1.sources.r1.command = for i in 1 2; do echo user=u$i line $i; done
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1 i2 i3
a1.sources.r1.interceptors.i1.type = host
a1.sources.r1.interceptors.i2.type = org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder
a1.sources.r1.interceptors.i2.searchPattern = ^user=(\\w+)\\s
a1.sources.r1.interceptors.i2.replaceString = [$1]:
a1.sources.r1.interceptors.i2.charset = UTF-8
a1.sources.r1.interceptors.i3.type = remove_header
a1.sources.r1.interceptors.i3.withName = host
a1.sources.r1.interceptors.i3.fromList = a, b
a1.sources.r1.interceptors.i3.matching = tmp_.*
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = ` + filepath.Join(dir, "out") + "\n"
	want := map[string]string{"type": "exec", "shell": "/bin/sh -c", "command": "for i in 1 2; do echo user=u$i line $i; done",
		"channels": "c1", "interceptors": "i1 i2 i3", "interceptors.i1.type": "host",
		"interceptors.i2.type": "search_replace", "interceptors.i2.search_pattern": `^user=(\w+)\s`,
		"interceptors.i2.replace_string": "[$1]:",
		"interceptors.i3.type":           "remove_header", "interceptors.i3.with_name": "host", "interceptors.i3.from_list": "a, b",
		"interceptors.i3.matching": "tmp_.*"}
	props := convertAndRun(t, text, dir, want)
	waitRolled(t, filepath.Join(dir, "out"), "[u1]:line 1\n[u2]:line 2\n")

	props["a1.sources.r1.interceptors.i2.charset"] = "UTF-16"
	props["a1.sources.r1.interceptors.i3.fromListSeparator"] = ";"
	_, err := Convert(props, "a1")
	for _, want := range []string{`a1.sources.r1.interceptors.i2.charset: only UTF-8 is supported, not "UTF-16"`,
		`a1.sources.r1.interceptors.i3.fromListSeparator: only the default separator (a comma) is supported, not ";"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
