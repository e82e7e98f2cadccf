package ingest_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/tagpipe/tagpipe/broker"
	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/agent"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

// The benchmarks run the broker in a child process (this test binary re-executed), so the
// CPU time and RSS reported are the collector's (and its Kafka client's) alone.
const benchBrokerEnv = "TAGPIPE_INGEST_BENCH_BROKER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(benchBrokerEnv); dir != "" {
		runBrokerChild(dir)
		return
	}
	code := m.Run()
	if benchBroker.cmd != nil {
		benchBroker.in.Close()
		_ = benchBroker.cmd.Wait()
		os.RemoveAll(benchBroker.dir)
	}
	os.Exit(code)
}

func runBrokerChild(dir string) {
	o := broker.DefaultOptions()
	o.Dir, o.Listen, o.RetentionCheckInterval = dir, "127.0.0.1:0", -1
	o.DefaultPartitions = 6
	b, err := broker.New(o)
	if err == nil {
		err = b.Start(context.Background())
	}
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", b.Addr())
	// Stop when the parent goes away (stdin closes).
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = b.Stop(context.Background())
}

var benchBroker struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	in   interface{ Close() error }
}

func brokerAddr(b *testing.B) string {
	if benchBroker.addr != "" {
		return benchBroker.addr
	}
	dir, _ := os.MkdirTemp("", "tagpipe-bench-broker")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchBrokerEnv+"="+dir)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		b.Fatalf("broker child: %q %v", line, err)
	}
	benchBroker.addr, benchBroker.cmd, benchBroker.in, benchBroker.dir = strings.TrimSpace(strings.TrimPrefix(line, "ADDR ")), cmd, in, dir
	return benchBroker.addr
}

var topicSeq atomic.Int64

func newTopic(kind string) string {
	return fmt.Sprintf("bench-%s-%d-%d", kind, os.Getpid(), topicSeq.Add(1))
}

func makeLines(n, size int) []byte {
	var sb strings.Builder
	pad := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		l := fmt.Sprintf(`{"user_id":"u%d","seq":%d,"p":"`, i%1000, i)
		rest := size - len(l) - 2
		if rest < 0 {
			rest = 0
		}
		sb.WriteString(l)
		sb.WriteString(pad[:rest])
		sb.WriteString("\"}\n")
	}
	return []byte(sb.String())
}

type usage struct {
	cpu    time.Duration
	broker time.Duration
	wall   time.Time
	prof   *os.File
}

// startUsage starts the measured interval. With TAGPIPE_BENCH_CPUPROFILE=PREFIX it also
// writes a CPU profile of just this interval (not the setup) to PREFIX-<benchmark>.pprof.
func startUsage(b *testing.B) usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), broker: brokerCPU(), wall: time.Now()}
	// Reset the peak RSS (VmHWM) so report's peak is this interval's, not the setup's.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	if prefix := os.Getenv("TAGPIPE_BENCH_CPUPROFILE"); prefix != "" {
		name := strings.NewReplacer("/", "_", "=", "").Replace(b.Name())
		if f, err := os.Create(prefix + "-" + name + ".pprof"); err == nil && pprof.StartCPUProfile(f) == nil {
			u.prof = f
		}
	}
	return u
}

// brokerCPU is the CPU time the broker child process has used so far.
func brokerCPU() time.Duration {
	if benchBroker.cmd == nil || benchBroker.cmd.Process == nil {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", benchBroker.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// rssMB reads a /proc/self/status field in MB: "VmRSS" (now) or "VmHWM" (peak).
func rssMB(field string) float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// report adds the rates, the CPU of this process (the collector or the raw producer) per
// second and per line, the broker child's CPU per line and this process's RSS.
func report(b *testing.B, u usage, lines, bytes int) {
	el := time.Since(u.wall).Seconds()
	if u.prof != nil {
		pprof.StopCPUProfile()
		u.prof.Close()
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) - u.cpu
	b.ReportMetric(float64(lines)/el, "lines/s")
	b.ReportMetric(float64(bytes)/el/1e6, "MB/s")
	b.ReportMetric(cpu.Seconds()/el, "cpu-cores")
	b.ReportMetric(cpu.Seconds()*1e6/float64(lines), "cpu-us/line")
	b.ReportMetric((brokerCPU()-u.broker).Seconds()*1e6/float64(lines), "broker-cpu-us/line")
	b.ReportMetric(rssMB("VmRSS"), "rss-MB")
	b.ReportMetric(rssMB("VmHWM"), "peak-rss-MB")
}

// BenchmarkRawProducer is the client limit: kafka-go's Writer, acks=all, the same batch
// settings as the kafka sink, writing lines that are already in memory.
func BenchmarkRawProducer(b *testing.B) {
	addr := brokerAddr(b)
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("line=%d", size), func(b *testing.B) {
			data := makeLines(b.N, size)
			topic := newTopic("raw")
			kafkatest.CreateTopic(b, addr, topic, 6)
			// TAGPIPE_BENCH_SINK_LINGER (experiments) sets the linger of both the sink and
			// this peer; unset, both use the sink's default, 1ms.
			linger := time.Millisecond
			if l, err := time.ParseDuration(os.Getenv("TAGPIPE_BENCH_SINK_LINGER")); err == nil {
				linger = l
			}
			w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
				BatchSize: 1000, BatchTimeout: linger, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true}
			defer w.Close()
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			debug.FreeOSMemory()
			b.ResetTimer()
			u := startUsage(b)
			for i := 0; i < len(lines); i += 1000 {
				end := min(i+1000, len(lines))
				msgs := make([]kafka.Message, 0, end-i)
				for _, l := range lines[i:end] {
					msgs = append(msgs, kafka.Message{Value: []byte(l), Key: []byte(l[12:16])})
				}
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			report(b, u, b.N, len(data))
		})
	}
}

var sinkBatch = envOr("TAGPIPE_BENCH_SINK_BATCH", "1000")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func benchAgent(b *testing.B, kind, chType string, size int) {
	addr := brokerAddr(b)
	data := makeLines(b.N, size)
	nbytes := len(data)
	dir := b.TempDir()
	topic := newTopic(kind)
	kafkatest.CreateTopic(b, addr, topic, 6)
	src := map[string]string{"channels": "c", "batch_size": envOr("TAGPIPE_BENCH_SOURCE_BATCH", "1000"), "interceptors": "u", "interceptors.u.type": "user_key", "interceptors.u.format": "jsonl"}
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	switch kind {
	case "spooldir":
		src["type"], src["dir"], src["min_age"], src["poll_interval"] = "spooldir", in, "-1ms", "5ms"
		tmp := filepath.Join(dir, "lines.jsonl")
		os.WriteFile(tmp, data, 0o644)
		// RSS is the collector's, not this buffer's.
		data = nil
		defer func() { os.Rename(tmp, filepath.Join(in, "lines.jsonl")) }() // dropped once the timer runs
	case "taildir":
		src["type"], src["filegroups"], src["filegroups.f"], src["poll_interval"] = "taildir", "f", filepath.Join(in, `app\.log`), "5ms"
	}
	ch := map[string]string{"type": chType, "capacity": "20000"}
	if chType == "file" {
		ch = map[string]string{"type": "file", "min_free_bytes": "-1"}
	}
	spec := agent.Spec{Name: "bench", Where: "bench", Sources: map[string]map[string]string{"s": src},
		Channels: map[string]map[string]string{"c": ch},
		Sinks:    map[string]map[string]string{"k": {"type": "kafka", "channel": "c", "topic": topic, "batch_size": sinkBatch}}}
	if l := os.Getenv("TAGPIPE_BENCH_SINK_LINGER"); l != "" { // experiments only
		spec.Sinks["k"]["linger"] = l
	}
	m := ingest.NewMetrics(nil)
	a, err := agent.Build(spec, agent.Env{DataDir: dir, Brokers: []string{addr}, Metrics: m, Log: benchLog()})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer a.Stop(context.Background())
	debug.FreeOSMemory() // RSS then reflects this benchmark, not the previous one's garbage
	b.ResetTimer()
	u := startUsage(b)
	if kind == "spooldir" {
		os.Rename(filepath.Join(dir, "lines.jsonl"), filepath.Join(in, "lines.jsonl"))
	} else {
		os.WriteFile(filepath.Join(in, "app.log"), data, 0o644)
	}
	data = nil // taildir's peak RSS still counts this buffer: it is written while measured
	kafkatest.WaitCount(b, addr, topic, int64(b.N), 10*time.Minute)
	b.StopTimer()
	report(b, u, b.N, nbytes)
	// How the sink spent its time: batches and their mean latency (take → ack).
	sc := m.Component("bench", "sink", "k", "")
	if n := sc.Get("batches"); n > 0 {
		b.ReportMetric(float64(sc.Get("success"))/float64(n), "events/batch")
		var h dto.Metric
		_ = m.BatchSeconds.WithLabelValues("bench", "k").(prometheus.Histogram).Write(&h)
		b.ReportMetric(h.GetHistogram().GetSampleSum()/float64(h.GetHistogram().GetSampleCount())*1000, "batch-ms")
	}
}

// BenchmarkSpoolDir and BenchmarkTailDir: lines from a file to the broker through the
// collector (acks=all), memory and file channel. Compare with BenchmarkRawProducer.
func BenchmarkSpoolDir(b *testing.B) { benchSources(b, "spooldir") }
func BenchmarkTailDir(b *testing.B)  { benchSources(b, "taildir") }

func benchSources(b *testing.B, kind string) {
	for _, ch := range []string{"memory", "file"} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("channel=%s/line=%d", ch, size), func(b *testing.B) { benchAgent(b, kind, ch, size) })
		}
	}
}

// benchLog shows the collector's warnings (failed deliveries) with -v.
func benchLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}
