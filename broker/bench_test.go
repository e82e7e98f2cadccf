package broker

// Side-by-side broker benchmarks: tagpipe's broker and franz-go's kfake (in memory, and
// its durable -data-dir mode, with and without fsync), each as a child process driven by
// the same franz-go client with the same flags: 100-byte records, 6 partitions,
// acks=all, idempotence off (both brokers serve it; off keeps client work equal), compression
// none and snappy. Reported per run: produce and consume records/s, the broker process's
// CPU-seconds per million records (from /proc/<pid>/stat, so client CPU is excluded; the
// -schedstat variants are the same at nanosecond resolution; produce CPU is taken over the
// timed records, after the warm-up record that connects and creates the topic), its
// peak RSS (VmHWM, which includes the mapped binary: tagpipe's carries DuckDB) and its
// peak anonymous RSS (heap and stacks, sampled every 5 ms).
//
//	go test ./broker -run '^$' -bench Brokers -benchtime 1x             # 200k records
//	BROKER_BENCH_RECORDS=1000000 go test ./broker -run '^$' -bench Brokers -benchtime 1x
//
// BROKER_BENCH_INFLIGHT=5 lets the producer keep 5 produce requests in flight per broker
// (franz-go's default is 1; the Java producer's max.in.flight.requests.per.connection
// default is 5), so the rate depends less on the client waiting for each acknowledgement.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testdataCmd builds a command under broker/testdata once per test binary.
type testdataCmd struct {
	name string
	once sync.Once
	path string
	err  error
}

var (
	kfakeCmd = &testdataCmd{name: "kfakebroker"}
	nullCmd  = &testdataCmd{name: "nullbroker"}
)

func (c *testdataCmd) bin(t testing.TB) string {
	c.once.Do(func() {
		dir, err := os.MkdirTemp("", c.name+"-")
		if err != nil {
			c.err = err
			return
		}
		c.path = filepath.Join(dir, c.name)
		out, err := exec.Command("go", "build", "-o", c.path, "github.com/tagpipe/tagpipe/broker/testdata/"+c.name).CombinedOutput()
		if err != nil {
			c.err = fmt.Errorf("build %s: %v\n%s", c.name, err, out)
		}
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.path
}

func kfakeBin(t testing.TB) string { return kfakeCmd.bin(t) }

// procStats reads a process's CPU seconds (user+system) and peak RSS in bytes.
func procStats(t testing.TB, pid int) (cpu float64, peakRSS int64) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the ")" of the command name; utime and stime are fields 14 and 15.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	cpu = (ut + st) / 100 // USER_HZ
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			peakRSS = kb * 1024
		}
	}
	return cpu, peakRSS
}

// threadsCPU is a process's CPU seconds summed over its threads' schedstat run times:
// nanosecond resolution, where /proc/<pid>/stat counts 10 ms ticks (a broker's produce
// CPU per 1M records is only 5–20 ticks). Threads that exited are not counted; Go
// processes keep theirs. It returns -1 without schedstat.
func threadsCPU(pid int) float64 {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return -1
	}
	var ns int64
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, e.Name()))
		if err != nil {
			return -1
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return -1
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		ns += v
	}
	return float64(ns) / 1e9
}

// anonSampler polls a process's anonymous RSS (its heap and stacks, without the mapped
// binary, which for tagpipe includes DuckDB) and keeps the maximum.
type anonSampler struct {
	stop chan struct{}
	done chan struct{}
	max  atomic.Int64
}

func sampleAnon(pid int) *anonSampler {
	s := &anonSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err == nil {
				for _, line := range strings.Split(string(status), "\n") {
					if strings.HasPrefix(line, "RssAnon:") {
						kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
						if kb*1024 > s.max.Load() {
							s.max.Store(kb * 1024)
						}
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *anonSampler) peak() int64 {
	close(s.stop)
	<-s.done
	return s.max.Load()
}

type benchPeer struct {
	name  string
	start func(b *testing.B) *brokerProc
}

func benchPeers() []benchPeer {
	tagpipe := func(flush string) func(b *testing.B) *brokerProc {
		return func(b *testing.B) *brokerProc {
			return startBrokerProc(b, b.TempDir(), "TAGPIPE_BROKER_DEFAULT_PARTITIONS=6", "TAGPIPE_BROKER_FLUSH="+flush)
		}
	}
	kfake := func(args ...string) func(b *testing.B) *brokerProc {
		return func(b *testing.B) *brokerProc {
			a := append([]string{}, args...)
			for i, s := range a {
				if s == "DIR" {
					a[i] = b.TempDir()
				}
			}
			return startProc(b, exec.Command(kfakeBin(b), a...))
		}
	}
	return []benchPeer{
		{"tagpipe", tagpipe("os")},
		{"tagpipe-fsync", tagpipe("always")},
		{"kfake-memory", kfake()},
		{"kfake-datadir", kfake("-data-dir", "DIR")},
		{"kfake-datadir-sync", kfake("-data-dir", "DIR", "-sync")},
	}
}

// benchInflight is the producer's MaxProduceRequestsInflightPerBroker (BROKER_BENCH_INFLIGHT).
func benchInflight() int {
	if n, err := strconv.Atoi(os.Getenv("BROKER_BENCH_INFLIGHT")); err == nil && n > 0 {
		return n
	}
	return 1
}

// benchRounds is how many turns the alternating benchmarks take (BROKER_BENCH_ROUNDS,
// else def).
func benchRounds(def int) int {
	if r, err := strconv.Atoi(os.Getenv("BROKER_BENCH_ROUNDS")); err == nil && r > 0 {
		return r
	}
	return def
}

func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("BROKER_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

func BenchmarkBrokers(b *testing.B) {
	n := benchRecords()
	for _, codec := range []string{"none", "snappy"} {
		for _, peer := range benchPeers() {
			b.Run(codec+"/"+peer.name, func(b *testing.B) {
				var prodRate, consRate, prodCPU, consCPU, prodFine, consFine, rss, anon float64
				fineOK := true
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					bp := peer.start(b)
					pid := bp.cmd.Process.Pid
					var cpu0, fine0 float64
					sampler := sampleAnon(pid)
					b.StartTimer()
					d := benchProduce(b, bp.addr, codec, n, func() {
						cpu0, _ = procStats(b, pid)
						fine0 = threadsCPU(pid)
					})
					cpu1, _ := procStats(b, pid)
					fine1 := threadsCPU(pid)
					dc := benchConsume(b, bp.addr, n)
					b.StopTimer()
					cpu2, peak := procStats(b, pid)
					fine2 := threadsCPU(pid)
					fineOK = fineOK && fine0 >= 0 && fine1 >= 0 && fine2 >= 0
					prodFine += (fine1 - fine0) / float64(n) * 1e6
					consFine += (fine2 - fine1) / float64(n) * 1e6
					anon = max(anon, float64(sampler.peak())/(1<<20))
					bp.kill()
					prodRate += float64(n) / d.Seconds()
					consRate += float64(n) / dc.Seconds()
					prodCPU += (cpu1 - cpu0) / float64(n) * 1e6
					consCPU += (cpu2 - cpu1) / float64(n) * 1e6
					rss = max(rss, float64(peak)/(1<<20))
				}
				N := float64(b.N)
				b.ReportMetric(prodRate/N, "produce-rec/s")
				b.ReportMetric(consRate/N, "consume-rec/s")
				b.ReportMetric(prodCPU/N, "produce-broker-cpu-s/1M")
				b.ReportMetric(consCPU/N, "consume-broker-cpu-s/1M")
				if fineOK { // the same CPU, at schedstat resolution
					b.ReportMetric(prodFine/N, "produce-broker-cpu-s/1M-schedstat")
					b.ReportMetric(consFine/N, "consume-broker-cpu-s/1M-schedstat")
				}
				b.ReportMetric(rss, "broker-peak-RSS-MB")
				b.ReportMetric(anon, "broker-peak-anon-RSS-MB")
			})
		}
	}
}

// benchProduce produces n 100-byte records (the first one, which creates the topic, as a
// warm-up outside the timed part) and returns the time the other n-1 took. started, if not
// nil, runs when the warm-up is done and the timed part begins, so that a caller can take
// the broker's CPU over the same records that are timed: per-record figures then leave out
// the client's first connection and the topic's creation, which are once per run.
func benchProduce(b *testing.B, addr, codec string, n int, started func()) time.Duration {
	d, _ := benchProduceWait(b, addr, codec, n, started)
	return d
}

// produceWait is a client hook that sums, over the produce requests after reset, the
// time from the client's starting to read a response to having all of it (franz-go's
// TimeToRead: with one request in flight, the broker's handling of the request, plus
// the response's trip back).
type produceWait struct {
	mu   sync.Mutex
	sum  time.Duration
	reqs int
}

func (w *produceWait) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != 0 { // Produce
		return
	}
	w.mu.Lock()
	w.sum += e.TimeToRead
	w.reqs++
	w.mu.Unlock()
}

func (w *produceWait) reset() {
	w.mu.Lock()
	w.sum, w.reqs = 0, 0
	w.mu.Unlock()
}

// benchProduceWait is benchProduce that also returns the time the client waited for
// the broker's responses to the timed records' produce requests (produceWait).
func benchProduceWait(b *testing.B, addr, codec string, n int, started func()) (time.Duration, time.Duration) {
	wait := &produceWait{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(benchInflight()),
		kgo.ProducerBatchCompression(kgoCodec(codec)), kgo.WithHooks(wait))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(b)
	// Create the topic first so auto-creation is not timed.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warmup")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	val := bytes.Repeat([]byte("x"), 100)
	var failed atomic.Int64
	wait.reset()
	if started != nil {
		started()
	}
	start := time.Now()
	for i := 1; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d records failed", f)
	}
	wait.mu.Lock()
	defer wait.mu.Unlock()
	return d, wait.sum
}

func benchConsume(b *testing.B, addr string, n int) time.Duration {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(b)
	start := time.Now()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("consumed %d of %d", got, n)
		}
		got += fs.NumRecords()
	}
	return time.Since(start)
}

// benchCodec is the ceiling benchmarks' producer compression (BROKER_BENCH_CODEC, else
// none).
func benchCodec() string {
	if c := os.Getenv("BROKER_BENCH_CODEC"); c != "" {
		return c
	}
	return "none"
}

// BenchmarkProduceCeiling is BenchmarkBrokers' produce phase (BROKER_BENCH_CODEC, default
// no compression) against
// tagpipe, kfake-datadir and testdata/nullbroker, which acknowledges every produce at
// once without storing anything: the rate the client reaches when the broker costs
// nothing. The three take turns, BROKER_BENCH_ROUNDS times (default 3), so load from
// other processes hits them alike; each one's median produce rate is reported, and the
// median share of the produce time the client spent waiting for that broker's responses
// (<peer>-wait-%, produceWait): what a faster broker could give back at most.
//
//	BROKER_BENCH_RECORDS=1000000 BROKER_BENCH_ROUNDS=5 go test ./broker -run '^$' -bench ProduceCeiling -benchtime 1x
func BenchmarkProduceCeiling(b *testing.B) {
	n := benchRecords()
	for i := 0; i < b.N; i++ {
		var waits []float64 // per call, in ceilingMedians' order: rounds of the peers in turn
		names, med := ceilingMedians(b, nil, func(addr string) time.Duration {
			d, wait := benchProduceWait(b, addr, benchCodec(), n, nil)
			waits = append(waits, 100*wait.Seconds()/d.Seconds())
			return d
		})
		for j, name := range names {
			b.ReportMetric(med[j], name+"-produce-rec/s")
			var w []float64
			for k := j; k < len(waits); k += len(names) {
				w = append(w, waits[k])
			}
			b.ReportMetric(median(w), name+"-wait-%")
		}
		b.ReportMetric(med[0]/med[1], "tagpipe/kfake-datadir")
		b.ReportMetric(med[2]/med[1], "null/kfake-datadir")
	}
}

// ceilingMedians runs measure (one phase of benchRecords records, its duration) against
// tagpipe, kfake-datadir and testdata/nullbroker started with nullArgs, taking turns
// benchRounds(3) times, each on a fresh broker, and returns the peers' names and median
// rates in that order.
func ceilingMedians(b *testing.B, nullArgs []string, measure func(addr string) time.Duration) ([]string, []float64) {
	n, rounds := benchRecords(), benchRounds(3)
	all := benchPeers()
	peers := []benchPeer{all[0], all[3], {"null", func(b *testing.B) *brokerProc {
		return startProc(b, exec.Command(nullCmd.bin(b), nullArgs...))
	}}}
	rates := make([][]float64, len(peers))
	for r := 0; r < rounds; r++ {
		for j, peer := range peers {
			bp := peer.start(b)
			d := measure(bp.addr)
			bp.kill()
			rates[j] = append(rates[j], float64(n)/d.Seconds())
		}
	}
	names, med := make([]string, len(peers)), make([]float64, len(peers))
	for j, peer := range peers {
		names[j], med[j] = peer.name, median(rates[j])
	}
	return names, med
}

// median sorts xs and returns its middle element (the upper one of an even count).
func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// BenchmarkConsumeCeiling is BenchmarkBrokers' consume phase (BROKER_BENCH_CODEC, default
// no compression) against
// tagpipe, kfake-datadir and testdata/nullbroker -keep, which keeps the produced batches
// in memory and answers every fetch at once from there: the rate the consumer reaches
// when the broker costs nothing. Each takes BROKER_BENCH_RECORDS from the same producer
// first; the three take turns, BROKER_BENCH_ROUNDS times (default 3), and each one's
// median consume rate is reported, with tagpipe's and the null broker's ratio to
// kfake-datadir's median.
//
//	BROKER_BENCH_RECORDS=1000000 BROKER_BENCH_ROUNDS=5 go test ./broker -run '^$' -bench ConsumeCeiling -benchtime 1x
func BenchmarkConsumeCeiling(b *testing.B) {
	n := benchRecords()
	for i := 0; i < b.N; i++ {
		names, med := ceilingMedians(b, []string{"-keep"}, func(addr string) time.Duration {
			benchProduce(b, addr, benchCodec(), n, nil)
			return benchConsume(b, addr, n)
		})
		for j, name := range names {
			b.ReportMetric(med[j], name+"-consume-rec/s")
		}
		b.ReportMetric(med[0]/med[1], "tagpipe/kfake-datadir")
		b.ReportMetric(med[2]/med[1], "null/kfake-datadir")
	}
}

// BenchmarkProduceCPU is BenchmarkBrokers' produce phase against tagpipe and
// kfake-datadir taking turns, BROKER_BENCH_ROUNDS times (default 5) per codec, each round
// on a fresh broker and data directory, removed after it (so no round writes into a page
// cache full of an earlier round's dirty pages). It reports each broker's median produce
// CPU per 1M records (schedstat) and the ratio of the medians: on a shared machine one
// round each, as BenchmarkBrokers does, leaves the ratio to chance. The CPU is taken
// over the timed records only, after the warm-up record that connects and creates the
// topic (as for the rates); tagpipe/kfake-datadir-with-setup is the same ratio with the
// connection and the topic's creation in the window, as it was measured before.
// BROKER_BENCH_BASE_BIN adds a turn for another tagpipe binary (an older build, say);
// BROKER_BENCH_CLIENT=kafka-go produces with BenchmarkBrokersKafkaGo's Writer instead.
//
//	BROKER_BENCH_RECORDS=1000000 BROKER_BENCH_ROUNDS=9 go test ./broker -run '^$' -bench ProduceCPU -benchtime 1x
func BenchmarkProduceCPU(b *testing.B) {
	n := benchRecords()
	rounds := benchRounds(5)
	type turn struct {
		name  string
		start func(b *testing.B, dir string) *brokerProc
	}
	tagpipe := func(bin string) func(b *testing.B, dir string) *brokerProc {
		return func(b *testing.B, dir string) *brokerProc {
			cmd := exec.Command(bin, "--data-dir", dir, "broker")
			cmd.Env = append(os.Environ(), "TAGPIPE_BROKER_LISTEN=127.0.0.1:0", "TAGPIPE_ADMIN_LISTEN=127.0.0.1:0",
				"TAGPIPE_BROKER_DEFAULT_PARTITIONS=6", "TAGPIPE_BROKER_FLUSH=os")
			return startProc(b, cmd)
		}
	}
	turns := []turn{
		{"tagpipe", tagpipe(tagpipeBin(b))},
		{"kfake-datadir", func(b *testing.B, dir string) *brokerProc {
			return startProc(b, exec.Command(kfakeBin(b), "-data-dir", dir))
		}},
	}
	if base := os.Getenv("BROKER_BENCH_BASE_BIN"); base != "" {
		turns = append(turns, turn{"base", tagpipe(base)})
	}
	codecs, kafkaGo := []string{"none", "snappy"}, os.Getenv("BROKER_BENCH_CLIENT") == "kafka-go"
	if kafkaGo {
		codecs = []string{"kafka-go"}
	}
	for _, codec := range codecs {
		b.Run(codec, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cpu := make([][]float64, len(turns))
				withSetup := make([][]float64, len(turns)) // the window before this change: connect and create too
				for r := 0; r < rounds; r++ {
					for j, t := range turns {
						dir, err := os.MkdirTemp("", "produce-cpu-")
						if err != nil {
							b.Fatal(err)
						}
						bp := t.start(b, dir)
						pid := bp.cmd.Process.Pid
						if kafkaGo {
							benchProduce(b, bp.addr, "none", 6, nil) // creates the topic with 6 partitions
						}
						c0 := threadsCPU(pid)
						cWarm := c0
						if kafkaGo {
							benchKafkaGoProduce(b, bp.addr, n)
						} else {
							benchProduce(b, bp.addr, codec, n, func() { cWarm = threadsCPU(pid) })
						}
						c1 := threadsCPU(pid)
						bp.kill()
						_ = os.RemoveAll(dir)
						if c0 < 0 || cWarm < 0 || c1 < 0 {
							b.Skip("no schedstat")
						}
						cpu[j] = append(cpu[j], (c1-cWarm)/float64(n)*1e6)
						withSetup[j] = append(withSetup[j], (c1-c0)/float64(n)*1e6)
					}
				}
				med, medSetup := make([]float64, len(turns)), make([]float64, len(turns))
				for j, t := range turns {
					med[j], medSetup[j] = median(cpu[j]), median(withSetup[j])
					b.ReportMetric(med[j], t.name+"-produce-cpu-s/1M")
				}
				b.ReportMetric(med[0]/med[1], "tagpipe/kfake-datadir")
				if !kafkaGo {
					b.ReportMetric(medSetup[0]/medSetup[1], "tagpipe/kfake-datadir-with-setup")
				}
			}
		})
	}
}

// BenchmarkInProcess runs the tagpipe broker in the test process, so `-cpuprofile` shows
// where the broker's CPU goes (focus on the broker packages in pprof):
//
//	go test ./broker -run '^$' -bench InProcess -benchtime 1x -cpuprofile cpu.out
//	go tool pprof -top -focus 'tagpipe/broker' broker.test cpu.out
func BenchmarkInProcess(b *testing.B) {
	n := benchRecords()
	for _, codec := range []string{"none", "snappy"} {
		b.Run(codec, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				o := testOptions(b)
				o.DefaultPartitions = 6
				br, err := New(o)
				if err != nil {
					b.Fatal(err)
				}
				if err := br.Start(testCtx(b)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				d := benchProduce(b, br.Addr(), codec, n, nil)
				dc := benchConsume(b, br.Addr(), n)
				b.StopTimer()
				_ = br.Close()
				b.ReportMetric(float64(n)/d.Seconds(), "produce-rec/s")
				b.ReportMetric(float64(n)/dc.Seconds(), "consume-rec/s")
			}
		})
	}
}

// BenchmarkGroups: three franz-go members of one group (cooperative-sticky) read
// BROKER_BENCH_RECORDS 100-byte records from 6 partitions (group consume records/s), then
// a fourth member joins and the time until the group is Stable again with all six
// partitions assigned is the rebalance time. tagpipe runs with no initial rebalance delay,
// like kfake.
func BenchmarkGroups(b *testing.B) {
	n := benchRecords()
	peers := []benchPeer{
		{"tagpipe", func(b *testing.B) *brokerProc {
			return startBrokerProc(b, b.TempDir(), "TAGPIPE_BROKER_DEFAULT_PARTITIONS=6", "TAGPIPE_BROKER_GROUP_INITIAL_REBALANCE_DELAY=0s")
		}},
		{"kfake-memory", func(b *testing.B) *brokerProc { return startProc(b, exec.Command(kfakeBin(b))) }},
	}
	for _, peer := range peers {
		b.Run(peer.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bp := peer.start(b)
				benchProduce(b, bp.addr, "none", n, nil)
				b.StartTimer()
				rate, rebalance := benchGroupRun(b, bp.addr, n)
				b.StopTimer()
				bp.kill()
				b.ReportMetric(rate, "group-consume-rec/s")
				b.ReportMetric(float64(rebalance.Microseconds())/1000, "rebalance-ms")
			}
		})
	}
}

func benchGroupRun(b *testing.B, addr string, n int) (float64, time.Duration) {
	ctx := testCtx(b)
	var got atomic.Int64
	var clients []*kgo.Client
	var wg sync.WaitGroup
	stop := make(chan struct{})
	member := func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("bench"), kgo.ConsumeTopics("bench"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.HeartbeatInterval(100*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				fs := cl.PollFetches(pctx)
				cancel()
				if fs.IsClientClosed() {
					return
				}
				got.Add(int64(fs.NumRecords()))
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		for _, cl := range clients {
			cl.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < 3; i++ {
		member()
	}
	for got.Load() < int64(n) {
		if ctx.Err() != nil {
			b.Fatalf("group consumed %d of %d", got.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	rate := float64(n) / time.Since(start).Seconds()
	_, adm := newAdmin(b, addr)
	start = time.Now()
	member()
	for {
		gs, err := adm.DescribeGroups(ctx, "bench")
		if err == nil {
			g := gs["bench"]
			assigned, members := 0, 0
			for _, m := range g.Members {
				if ca, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range ca.Topics {
						assigned += len(t.Partitions)
					}
					if len(ca.Topics) > 0 && len(ca.Topics[0].Partitions) > 0 {
						members++
					}
				}
			}
			if g.State == "Stable" && len(g.Members) == 4 && assigned == 6 && members == 4 {
				break
			}
		}
		if ctx.Err() != nil {
			b.Fatal("group never rebalanced to 4 members")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return rate, time.Since(start)
}

// BenchmarkE2ELatency produces at a fixed 50k records/s for 3 s (100-byte records, 6
// partitions, acks=all) while a consumer reads them; the latency of a record is the time
// from its Produce call (its timestamp) to its arrival at the consumer.
func BenchmarkE2ELatency(b *testing.B) {
	peers := []benchPeer{benchPeers()[0], benchPeers()[1], benchPeers()[3]}
	for _, peer := range peers {
		b.Run(peer.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bp := peer.start(b)
				benchProduce(b, bp.addr, "none", 6, nil) // creates the topic
				b.StartTimer()
				p50, p99, max := benchLatency(b, bp.addr, 50_000, 3*time.Second)
				b.StopTimer()
				bp.kill()
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p99, "p99-ms")
				b.ReportMetric(max, "max-ms")
			}
		})
	}
}

func benchLatency(b *testing.B, addr string, rate int, d time.Duration) (p50, p99, pmax float64) {
	ctx := testCtx(b)
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < 6; p++ {
		offsets[p] = kgo.NewOffset().AtEnd()
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bench": offsets}),
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	// Let the consumer reach the end of every partition before producing.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	cons.PollFetches(pctx)
	cancel()
	total := int(float64(rate) * d.Seconds())
	lat := make([]float64, 0, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(lat) < total && ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) { lat = append(lat, float64(now.Sub(r.Timestamp).Microseconds())/1000) })
		}
	}()
	val := bytes.Repeat([]byte("x"), 100)
	tick := time.NewTicker(time.Millisecond)
	perTick := rate / 1000
	start := time.Now()
	sent := 0
	for sent < total {
		<-tick.C
		// Catch up if a tick was missed, so the offered rate stays fixed.
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+perTick)
		for ; sent < due; sent++ {
			prod.Produce(ctx, &kgo.Record{Value: val, Timestamp: time.Now()}, nil)
		}
	}
	tick.Stop()
	<-done
	if len(lat) < total {
		b.Fatalf("consumed %d of %d", len(lat), total)
	}
	sort.Float64s(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
}

// BenchmarkBrokersKafkaGo is BenchmarkBrokers' produce/consume with the kafka-go client
// (the one tagpipe's collector and streaming engine use): a Writer with batches of 1000,
// acks=all, and one Reader per partition.
func BenchmarkBrokersKafkaGo(b *testing.B) {
	n := benchRecords()
	all := benchPeers()
	for _, peer := range []benchPeer{all[0], all[3]} {
		b.Run(peer.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bp := peer.start(b)
				benchProduce(b, bp.addr, "none", 6, nil) // creates the topic with 6 partitions
				pid := bp.cmd.Process.Pid
				cpu0, _ := procStats(b, pid)
				b.StartTimer()
				d := benchKafkaGoProduce(b, bp.addr, n)
				cpu1, _ := procStats(b, pid)
				dc := benchKafkaGoConsume(b, bp.addr, n+6)
				b.StopTimer()
				cpu2, _ := procStats(b, pid)
				bp.kill()
				b.ReportMetric(float64(n)/d.Seconds(), "produce-rec/s")
				b.ReportMetric(float64(n+6)/dc.Seconds(), "consume-rec/s")
				b.ReportMetric((cpu1-cpu0)/float64(n)*1e6, "produce-broker-cpu-s/1M")
				b.ReportMetric((cpu2-cpu1)/float64(n)*1e6, "consume-broker-cpu-s/1M")
			}
		})
	}
}

func benchKafkaGoProduce(b *testing.B, addr string, n int) time.Duration {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "bench", Balancer: &kafka.RoundRobin{}, Transport: tr,
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: time.Millisecond}
	defer w.Close()
	val := bytes.Repeat([]byte("x"), 100)
	msgs := make([]kafka.Message, 6000)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: val}
	}
	ctx := testCtx(b)
	start := time.Now()
	for sent := 0; sent < n; sent += len(msgs) {
		batch := msgs[:min(len(msgs), n-sent)]
		if err := w.WriteMessages(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func benchKafkaGoConsume(b *testing.B, addr string, n int) time.Duration {
	ctx := testCtx(b)
	var got atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for p := 0; p < 6; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "bench", Partition: p,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for got.Load() < int64(n) {
				if _, err := r.ReadMessage(cctx); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	for got.Load() < int64(n) {
		if ctx.Err() != nil {
			b.Fatalf("kafka-go consumed %d of %d", got.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	d := time.Since(start)
	cancel()
	wg.Wait()
	return d
}

// BenchmarkHandleProduce is the broker's own work for one produce request like the
// franz-go client's in BenchmarkBrokers (6 partitions, ~3700 100-byte records each,
// acks=all), without the network: decode, CRC checks, segment writes and the encoded
// response. It reports allocations per request; CPU per record is ns/op / 22200.
func BenchmarkHandleProduce(b *testing.B) {
	o := testOptions(b)
	o.DefaultPartitions = 6
	br := startBroker(b, o)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 11, -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	for p := int32(0); p < 6; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch(3700, 1000, bytes.Repeat([]byte("x"), 100))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	frame := frameRequest(req, 1)[4:]
	c := &conn{b: br, done: make(chan struct{}), ctx: context.Background(), remote: "bench"}
	work := make([]byte, len(frame))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(work, frame) // handleFrame rewrites offsets in place, as it does the frame buffer
		f, err := c.handleFrame(work)
		if err != nil || f == nil {
			b.Fatal(err)
		}
		f.release()
	}
}
