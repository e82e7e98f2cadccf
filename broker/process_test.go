package broker

// Tests that run the real `tagpipe` binary as a child process: kill -9 durability and the
// topics/produce/consume CLI. The binary is built once into a temp dir (or taken from
// BROKER_TEST_BIN, e.g. bin/tagpipe from `make build`).

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func tagpipeBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the tagpipe binary")
	}
	binOnce.Do(func() {
		if p := os.Getenv("BROKER_TEST_BIN"); p != "" {
			binPath, binErr = filepath.Abs(p)
			return
		}
		binDir, binErr = os.MkdirTemp("", "tagpipe-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tagpipe")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/tagpipe/tagpipe/cmd/tagpipe").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/tagpipe: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// brokerProc is a `tagpipe broker` child process.
type brokerProc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

var listeningRe = regexp.MustCompile(`msg="broker listening".* addr=(\S+)`)

func startBrokerProc(t testing.TB, dataDir string, env ...string) *brokerProc {
	t.Helper()
	cmd := exec.Command(tagpipeBin(t), "--data-dir", dataDir, "broker")
	cmd.Env = append(os.Environ(), "TAGPIPE_BROKER_LISTEN=127.0.0.1:0", "TAGPIPE_ADMIN_LISTEN=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	return startProc(t, cmd)
}

// startProc starts a broker process that logs `msg="broker listening" … addr=HOST:PORT`
// on stderr and returns once it does; the process is killed when the test ends.
func startProc(t testing.TB, cmd *exec.Cmd) *brokerProc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, done: make(chan struct{})}
	addrCh := make(chan string, 1)
	var logMu sync.Mutex
	var logTail []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logTail = append(logTail, sc.Text())
			if len(logTail) > 20 {
				logTail = logTail[1:]
			}
			logMu.Unlock()
			if m := listeningRe.FindStringSubmatch(sc.Text()); m != nil {
				addrCh <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	// Wait only after stderr is drained (os/exec: reads must finish before Wait).
	go func() { <-readDone; _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	select {
	case p.addr = <-addrCh:
	case <-p.done:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("%s exited before listening:\n%s", cmd.Path, strings.Join(logTail, "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("tagpipe broker did not start listening")
	}
	return p
}

func (p *brokerProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func TestKill9KeepsAckedRecords(t *testing.T) {
	dir := t.TempDir()
	bp := startBrokerProc(t, dir, "TAGPIPE_BROKER_DEFAULT_PARTITIONS=3")
	cl, err := kgo.NewClient(kgo.SeedBrokers(bp.addr), kgo.DefaultProduceTopic("durable"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.AllowAutoTopicCreation(), kgo.RecordRetries(0),
		kgo.RetryTimeout(2*time.Second), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		acked  = map[int]bool{}
		failed int
	)
	stop := make(chan struct{})
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		ctx := testCtx(t)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			i := i
			cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					acked[i] = true
				} else {
					failed++
				}
			})
		}
	}()
	// Kill -9 in the middle of producing, once a good number of records are acknowledged.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A committed group offset, acknowledged before the kill, must survive it too.
	_, kadmCl := newAdmin(t, bp.addr)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "durable", Partition: 1, At: 123, LeaderEpoch: -1, Metadata: "kept"})
	if rs, err := kadmCl.CommitOffsets(testCtx(t), "k9", offs); err != nil || rs.Error() != nil {
		t.Fatal(err, rs.Error())
	}
	bp.kill()
	close(stop)
	<-producing
	cl.Close() // fails whatever is still in flight
	mu.Lock()
	ackedCopy := make(map[int]bool, len(acked))
	for k := range acked {
		ackedCopy[k] = true
	}
	failedCount := failed // under mu: kgo's Close fails the buffered records on goroutines of its own
	mu.Unlock()

	bp2 := startBrokerProc(t, dir)
	_, adm2 := newAdmin(t, bp2.addr)
	fo, err := adm2.FetchOffsets(testCtx(t), "k9")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fo.Lookup("durable", 1); o.At != 123 || o.Metadata != "kept" {
		t.Fatalf("committed offset after kill -9: %+v", o)
	}
	recs := consumeAll(t, bp2.addr, "durable", 3)
	have := map[int]bool{}
	for _, list := range recs {
		for _, r := range list {
			n, _ := strconv.Atoi(string(r.Value))
			have[n] = true
		}
	}
	lost := 0
	for k := range ackedCopy {
		if !have[k] {
			lost++
		}
	}
	t.Logf("acked %d, failed %d, after restart %d records", len(ackedCopy), failedCount, len(have))
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost after kill -9", lost)
	}
}

func runCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tagpipeBin(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("tagpipe %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func TestCLITopicsProduceConsume(t *testing.T) {
	dir := t.TempDir()
	bp := startBrokerProc(t, dir, "TAGPIPE_BROKER_GROUP_INITIAL_REBALANCE_DELAY=0s")
	bs := []string{"--data-dir", dir}
	cli := func(stdin string, args ...string) string {
		return runCLI(t, stdin, append(append(args, bs...), "--bootstrap-server", bp.addr)...)
	}
	cli("", "topics", "create", "--topic", "test", "--partitions", "3", "--replication-factor", "1")
	// Internal topics are listed, as kafka-topics.sh lists them, unless excluded.
	if out := cli("", "topics", "list"); strings.TrimSpace(out) != "__consumer_offsets\ntest" {
		t.Fatalf("list: %q", out)
	}
	if out := cli("", "topics", "list", "--exclude-internal"); strings.TrimSpace(out) != "test" {
		t.Fatalf("list --exclude-internal: %q", out)
	}
	cli("", "topics", "alter", "--topic", "test", "--config", "retention.ms=10000")
	out := cli("", "topics", "describe", "--topic", "test")
	for _, want := range []string{"PartitionCount: 3", "retention.ms=10000 (dynamic_topic)", "segment.bytes=1073741824 (default)", "Leader"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe lacks %q:\n%s", want, out)
		}
	}
	// The topic id as kafka-topics.sh prints it: URL-safe base64 without padding.
	if !regexp.MustCompile(`TopicId: [A-Za-z0-9_-]{22}\t`).MatchString(out) {
		t.Fatalf("describe: topic id not in Kafka's form:\n%s", out)
	}
	cli("", "topics", "alter", "--topic", "test", "--delete-config", "retention.ms")
	if out := cli("", "topics", "describe", "--topic", "test"); !strings.Contains(out, "retention.ms=604800000 (default)") {
		t.Fatalf("delete-config did not restore the default:\n%s", out)
	}
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("k%d:value %d", i%4, i))
	}
	cli(strings.Join(lines, "\n")+"\n", "produce", "--topic", "test", "--key-separator", ":")
	out = cli("", "consume", "--topic", "test", "--from-beginning", "--max-messages", "30", "--print-key", "--separator", ":")
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != 30 {
		t.Fatalf("consumed %d lines:\n%s", len(got), out)
	}
	seen := map[string]bool{}
	for _, l := range got {
		seen[l] = true
	}
	for _, l := range lines {
		if !seen[l] {
			t.Fatalf("line %q not consumed", l)
		}
	}
	out = cli("", "consume", "--topic", "test", "--partition", "0", "--offset", "0", "--idle-timeout", "2s", "--print-offset")
	if !strings.HasPrefix(out, "0\t0\t") {
		t.Fatalf("consume from partition 0 offset 0: %q", out)
	}
	// A group reads part, commits what it printed, and the next run resumes after it.
	first := cli("", "consume", "--topic", "test", "--group", "cg", "--from-beginning", "--max-messages", "10", "--idle-timeout", "10s")
	rest := cli("", "consume", "--topic", "test", "--group", "cg", "--from-beginning", "--max-messages", "20", "--idle-timeout", "10s")
	l1, l2 := strings.Split(strings.TrimSpace(first), "\n"), strings.Split(strings.TrimSpace(rest), "\n")
	all := map[string]bool{}
	for _, l := range append(l1, l2...) {
		all[l] = true
	}
	if len(l1) != 10 || len(l1)+len(l2) != 30 || len(all) != 30 {
		t.Fatalf("group consume: first run %d lines, second %d, distinct %d", len(l1), len(l2), len(all))
	}
	cli("", "topics", "delete", "--topic", "test")
	if out := cli("", "topics", "list"); strings.TrimSpace(out) != "__consumer_offsets" {
		t.Fatalf("after delete: %q", out)
	}
}

func TestCLIGroups(t *testing.T) {
	dir := t.TempDir()
	bp := startBrokerProc(t, dir)
	cli := func(args ...string) string {
		return runCLI(t, "", append(args, "--data-dir", dir, "--bootstrap-server", bp.addr)...)
	}
	cli("topics", "create", "--topic", "gt", "--partitions", "3")
	cl, adm := newAdmin(t, bp.addr, kgo.DefaultProduceTopic("gt"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 10; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func(at ...int64) {
		offs := kadm.Offsets{}
		for p, o := range at {
			offs.Add(kadm.Offset{Topic: "gt", Partition: int32(p), At: o, LeaderEpoch: -1})
		}
		rs, err := adm.CommitOffsets(ctx, "cli-g", offs)
		if err != nil || rs.Error() != nil {
			t.Fatal(err, rs.Error())
		}
	}
	committed := func() []int64 {
		os, err := adm.FetchOffsets(ctx, "cli-g")
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for p := int32(0); p < 3; p++ {
			o, _ := os.Lookup("gt", p)
			out = append(out, o.At)
		}
		return out
	}
	commit(4, 10, 0)
	if out := cli("groups", "list"); !strings.Contains(out, "cli-g") || !strings.Contains(out, "Empty") {
		t.Fatalf("groups list:\n%s", out)
	}
	out := cli("groups", "describe", "--group", "cli-g")
	lags, err := adm.Lag(ctx, "cli-g")
	if err != nil {
		t.Fatal(err)
	}
	for _, ml := range lags["cli-g"].Lag.Sorted() {
		// TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG LAG-SECONDS …
		want := fmt.Sprintf("gt %d %d %d %d ", ml.Partition, ml.Commit.At, ml.End.Offset, ml.Lag)
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.Join(strings.Fields(line), " ")+" ", want) {
				found = true
				f := strings.Fields(line)
				if secs := f[5]; (ml.Lag == 0) != (secs == "0") || secs == "-" {
					t.Fatalf("lag seconds %q for lag %d", secs, ml.Lag)
				}
			}
		}
		if !found {
			t.Fatalf("describe lacks %q (kadm Lag):\n%s", want, out)
		}
	}
	out = cli("groups", "reset-offsets", "--group", "cli-g", "--to-earliest")
	if !strings.Contains(out, "Dry run") || fmt.Sprint(committed()) != "[4 10 0]" {
		t.Fatalf("dry run changed offsets: %v\n%s", committed(), out)
	}
	cli("groups", "reset-offsets", "--group", "cli-g", "--to-earliest", "--execute")
	if got := fmt.Sprint(committed()); got != "[0 0 0]" {
		t.Fatalf("to-earliest: %s", got)
	}
	cli("groups", "reset-offsets", "--group", "cli-g", "--shift-by", "3", "--execute")
	if got := fmt.Sprint(committed()); got != "[3 3 3]" {
		t.Fatalf("shift-by 3: %s", got)
	}
	cli("groups", "reset-offsets", "--group", "cli-g", "--to-latest", "--execute")
	if got := fmt.Sprint(committed()); got != "[10 10 10]" {
		t.Fatalf("to-latest: %s", got)
	}
	cli("groups", "reset-offsets", "--group", "cli-g", "--to-datetime", "2000-01-01T00:00:00Z", "--execute")
	if got := fmt.Sprint(committed()); got != "[0 0 0]" {
		t.Fatalf("to-datetime 2000: %s", got)
	}
	cli("groups", "delete", "--group", "cli-g")
	if out := cli("groups", "list"); strings.Contains(out, "cli-g") {
		t.Fatalf("deleted group still listed:\n%s", out)
	}
}
