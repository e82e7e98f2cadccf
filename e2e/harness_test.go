//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// repoRoot is the checkout (the package runs in <root>/e2e).
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

// binary is the tagpipe binary under test: $TAGPIPE_BIN or <root>/bin/tagpipe.
var binary string

func TestMain(m *testing.M) {
	binary = os.Getenv("TAGPIPE_BIN")
	if binary == "" {
		binary = filepath.Join(repoRoot, "bin", "tagpipe")
	}
	if abs, err := filepath.Abs(binary); err == nil {
		binary = abs
	}
	if _, err := os.Stat(binary); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %s missing (run make build, or set TAGPIPE_BIN): %v\n", binary, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// baseEnv is the test's environment without TAGPIPE_… variables (tagpipe refuses unknown
// ones, e.g. TAGPIPE_BIN, and the suite sets its own).
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAGPIPE_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a 127.0.0.1 address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// proc is one tagpipe child process. Restarts append to the same log file.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	env     []string
	dir     string
	logPath string
	admin   string // admin listener (readyz, metrics)

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	start int // how many times it was started
}

func (p *proc) run() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			p.t.Fatalf("%s: already running", p.name)
		}
	}
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("cannot open log %s: %v", p.logPath, err)
	}
	p.start++
	fmt.Fprintf(lf, "===== e2e: start #%d of %s %s\n", p.start, p.name, strings.Join(p.args, " "))
	cmd := exec.Command(binary, p.args...)
	cmd.Dir = p.dir
	cmd.Env = append(baseEnv(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		p.t.Fatalf("cannot start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
}

func (p *proc) exited() bool {
	p.mu.Lock()
	d := p.done
	p.mu.Unlock()
	select {
	case <-d:
		return true
	default:
		return false
	}
}

// waitReady polls the process's /readyz until it answers 200.
func (p *proc) waitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if p.exited() {
			p.t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, tail(p.logPath, 40))
		}
		resp, err := cl.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s not ready after %v\n%s", p.name, timeout, tail(p.logPath, 40))
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (p *proc) kill9() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s: still running 30s after SIGKILL", p.name)
	}
}

// stop sends SIGTERM and wants a clean exit (status 0) within the lifecycle deadline.
func (p *proc) stop() {
	p.t.Helper()
	if p.exited() {
		p.t.Errorf("%s had already exited: %v\n%s", p.name, p.err, tail(p.logPath, 40))
		return
	}
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		p.t.Errorf("%s did not stop within 60s of SIGTERM\n%s", p.name, tail(p.logPath, 40))
		return
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		p.t.Errorf("%s did not stop cleanly: %v\n%s", p.name, err, tail(p.logPath, 40))
	}
}

// cleanup kills a process still running when the test ends (after a failure).
func (p *proc) cleanup() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
	default:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// metric reads one unlabelled-or-labelled sample's value from the process's /metrics:
// the first line starting with name (e.g. `tagpipe_streaming_records_total{`).
func (p *proc) metric(prefix string) (float64, bool) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- last lines of " + path + ":\n" + strings.Join(lines, "\n")
}

// cluster is tagpipe run as separate processes over one data dir.
type cluster struct {
	t       *testing.T
	root    string // t.TempDir(): data dir, logs, inputs
	data    string
	broker  string // Kafka listener
	env     []string
	procs   map[string]*proc
	kclient *kgo.Client
	adm     *kadm.Client
}

func newCluster(t *testing.T) *cluster {
	root := t.TempDir()
	c := &cluster{t: t, root: root, data: filepath.Join(root, "data"), broker: freeAddr(t), procs: map[string]*proc{}}
	if err := os.MkdirAll(filepath.Join(c.data, "spool", "events"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.env = []string{
		"TAGPIPE_BROKER_LISTEN=" + c.broker,
		"TAGPIPE_SQL_PG_LISTEN=" + freeAddr(t),
		"TAGPIPE_STREAMING_BATCH_INTERVAL=1s",
		// On 2 busy cores a batch's fixed cost (Parquet files and a snapshot per table) is
		// about the 1s interval, and the PID rate estimator then settles at its floor
		// (~100 records/s). Bounded batches without the estimator keep the suite quick
		// while still being many batches.
		"TAGPIPE_STREAMING_BACKPRESSURE=false",
		"TAGPIPE_STREAMING_MAX_RECORDS_PER_PARTITION=4000",
		"TAGPIPE_LOG_LEVEL=info",
	}
	for _, name := range []string{"broker", "ingest", "stream"} {
		admin := freeAddr(t)
		c.procs[name] = &proc{
			t: t, name: name, args: []string{"--data-dir", c.data, name}, dir: root,
			env:     append(append([]string(nil), c.env...), "TAGPIPE_ADMIN_LISTEN="+admin),
			logPath: filepath.Join(root, name+".log"), admin: admin,
		}
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(c.broker), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.kclient, c.adm = kc, kadm.NewClient(kc)
	t.Cleanup(func() {
		kc.Close()
		for _, p := range c.procs {
			p.cleanup()
		}
		if t.Failed() {
			for _, n := range []string{"broker", "ingest", "stream"} {
				if c.procs[n].start == 0 {
					continue
				}
				t.Log(tail(c.procs[n].logPath, 30))
			}
		}
	})
	return c
}

// startAll starts broker, collector and streaming in flow order, each once ready.
func (c *cluster) startAll() {
	c.t.Helper()
	for _, n := range []string{"broker", "ingest", "stream"} {
		c.procs[n].run()
		c.procs[n].waitReady(90 * time.Second)
	}
}

func (c *cluster) stopAll() {
	c.t.Helper()
	for _, n := range []string{"stream", "ingest", "broker"} {
		c.procs[n].stop()
	}
}

// tagpipe runs a one-shot subcommand against the data dir and returns its stdout.
func (c *cluster) tagpipe(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--data-dir", c.data}, args...)...)
	cmd.Dir = c.root
	cmd.Env = append(baseEnv(), append(c.env, "TAGPIPE_ADMIN_LISTEN="+freeAddrNoT())...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("tagpipe %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func freeAddrNoT() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// query runs SQL through `tagpipe sql --format csv` and returns the rows without the
// header.
func (c *cluster) query(q string) ([][]string, error) {
	out, err := c.tagpipe(2*time.Minute, "sql", "--format", "csv", "-e", q)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("cannot read CSV of %q: %w\n%s", q, err, out)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no header in the output of %q", q)
	}
	return rows[1:], nil
}

func (c *cluster) mustQuery(q string) [][]string {
	c.t.Helper()
	rows, err := c.query(q)
	if err != nil {
		c.t.Fatal(err)
	}
	return rows
}

// count runs a query returning one integer.
func (c *cluster) count(q string) (int64, error) {
	rows, err := c.query(q)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("%q: want one value, got %v", q, rows)
	}
	return strconv.ParseInt(rows[0][0], 10, 64)
}

func (c *cluster) mustCount(q string) int64 {
	c.t.Helper()
	n, err := c.count(q)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// endOffsets is the sum of the topic's partition end offsets (0 when it does not exist).
func (c *cluster) endOffsets(topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	lo, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	var ferr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if !errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				ferr = o.Err
			}
			return
		}
		sum += o.Offset
	})
	return sum, ferr
}

// drop moves a file into the spool directory the way producers must: written under a
// dot name, then renamed in.
func (c *cluster) drop(name string, body []byte) {
	c.t.Helper()
	dir := filepath.Join(c.data, "spool", "events")
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		c.t.Fatal(err)
	}
}

// waitFor polls cond every interval until it returns true, an error, or timeout.
func waitFor(t *testing.T, what string, timeout, interval time.Duration, cond func() (bool, string, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, status, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			t.Logf("%s: %s", what, status)
			return
		}
		if status != last {
			t.Logf("waiting for %s: %s", what, status)
			last = status
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v: %s", what, timeout, status)
		}
		time.Sleep(interval)
	}
}
