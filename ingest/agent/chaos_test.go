package agent

// TestChaos runs one collector agent with every line source at once — two spooling
// directories, a tailed file group, TCP, HTTP and syslog over UDP and TCP — through file
// channels and kafka sinks into an in-process tagpipe broker, and for a bounded, seeded
// number of operations drops, writes, rotates, truncates and removes files, sends
// (and breaks off) client traffic, stops and starts the broker, adds partitions,
// recreates topics, fills a channel's "disk", and stops, restarts and kill -9s the
// agent. After a drain with everything up it checks what must hold whatever happened in
// between: every line acknowledged to a client (an OK of the tcp source, a 200 of the
// http source, a spooled file completed, a tailed line behind the position the agent
// saved, a line still in a tailed file at the end) is in Kafka; nothing is in Kafka that
// was never sent, and each record went to the topic its input calls for (bad input to
// the dead-letter topic with an error header); copies of a spooled line share its event
// id; the spool directories hold only completed (or no) files; no goroutine is left after
// Stop. TAGPIPE_CHAOS_OPS sets the operation count (long runs), TAGPIPE_CHAOS_SEED the
// seed (make test uses 0).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
	"github.com/tagpipe/tagpipe/internal/chaosenv"
)

const (
	chaosTopic = "events"
	chaosDLQ   = "events_dlq"
	chaosSys   = "chaos-sys" // the syslog sources' topic (a static topic header); recreated under them
)

// chaosItem is one unit of input the test sent: a line, a request's line, a syslog
// message. Its token (kind#n) is in every record made of it.
type chaosItem struct {
	tok   string
	value string // the record value it must make (see match)
	// match: "exact" (value), "prefix" (a cut line: a prefix of value holding the
	// token), "suffix" (syslog: the body ends with value).
	match    string
	dlq      bool // bad input: dead-letter topic, error header
	sys      bool // syslog: chaos-sys unless dlq
	required bool
	why      string // why it is required
}

type chaosLedger struct {
	mu    sync.Mutex
	n     int
	items map[string]*chaosItem
	// fragments are syslog frames cut off by the client closing: the source delivers
	// them (parsed, or whole as dead letters), so a record may be any end of one.
	fragments []string
}

func (l *chaosLedger) tok(kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return fmt.Sprintf("%s#%d", kind, l.n)
}

func (l *chaosLedger) add(it *chaosItem) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it.match == "" {
		it.match = "exact"
	}
	l.items[it.tok] = it
}

func (l *chaosLedger) require(tok, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it := l.items[tok]; it != nil && !it.required {
		it.required, it.why = true, why
	}
}

var chaosTokRe = regexp.MustCompile(`[a-z]#[0-9]+`)

// chaosTail is one tailed file as the test wrote it.
type chaosTail struct {
	path  string
	ino   uint64
	data  []byte
	lines []chaosTailLine
}

type chaosTailLine struct {
	tok string
	end int64
}

type chaosRun struct {
	t    *testing.T
	rng  *rand.Rand
	led  *chaosLedger
	data string // the agent's data dir
	logf *os.File

	be      kafkatest.Backend
	bdir    string
	bport   int
	broker  kafkatest.Broker // nil while down
	spool   string           // spooldir, completed files renamed, min_age
	spoolD  string           // spooldir, completed files deleted
	tailDir string

	ports    map[string]int
	metrics  *ingest.Metrics
	agent    *Agent    // in-process incarnation
	full     string    // its channel whose disk is "full"
	child    *exec.Cmd // subprocess incarnation (kill -9)
	kills    int
	maxKills int

	spoolDrops int // files dropped into spool (each one becomes one .COMPLETED file)
	names      int
	tails      [2]*chaosTail
	rotated    []*chaosTail
	rotations  int
	snapshots  []kafkatest.Record // topics' records read before the topic was deleted
	journal    []string           // what happened to the tailed files, logged on failure
	clients    sync.WaitGroup
	counts     map[string]int
}

func TestChaos(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ops := chaosenv.Ops(t, 25, 60)
	seed := chaosenv.Seed(t)
	t.Logf("seed %d, %d operations (TAGPIPE_CHAOS_SEED, TAGPIPE_CHAOS_OPS)", seed, ops)
	var be kafkatest.Backend
	for _, b := range kafkatest.Backends() {
		if b.Name == "tagpipe" {
			be = b
		}
	}
	r := &chaosRun{t: t, rng: rand.New(rand.NewPCG(seed, 0x1ce)), led: &chaosLedger{items: map[string]*chaosItem{}},
		data: t.TempDir(), be: be, bdir: t.TempDir(), metrics: ingest.NewMetrics(nil),
		maxKills: 2 + ops/40, counts: map[string]int{}}
	r.spool = filepath.Join(r.data, "spool")
	r.spoolD = filepath.Join(r.data, "spool-delete")
	r.tailDir = filepath.Join(r.data, "logs")
	for _, d := range []string{r.spool, r.spoolD, r.tailDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if r.logf, err = os.Create(filepath.Join(r.data, "child.log")); err != nil {
		t.Fatal(err)
	}
	defer r.logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tailed files:\n%s", strings.Join(r.journal, "\n"))
			b, _ := os.ReadFile(filepath.Join(r.data, "child.log"))
			if len(b) > 0 {
				t.Logf("child log tail:\n%s", tail(b, 4000))
			}
		}
	})
	r.ports = map[string]int{}
	for _, n := range []string{"tcp", "http", "systcp", "sysudp"} {
		r.ports[n] = chaosFreePort(t, n == "sysudp")
	}
	r.broker = be.Start(t, r.bdir, 0, map[string]int32{chaosTopic: 3, chaosDLQ: 1, chaosSys: 1})
	r.bport = kafkatest.Port(r.broker.Addr())
	defer func() {
		if r.child != nil {
			r.child.Process.Signal(syscall.SIGKILL)
			r.child.Wait()
		}
		if r.agent != nil {
			r.stopAgent(10 * time.Second)
		}
		if r.broker != nil {
			r.broker.Stop()
		}
	}()
	r.startAgent(false, "")

	for i := 0; i < ops; i++ {
		r.op()
		time.Sleep(time.Duration(2+r.rng.IntN(20)) * time.Millisecond)
	}
	r.clients.Wait()
	t.Logf("operations: %v; kills %d", r.counts, r.kills)

	// Everything up, then a last round of input that must all arrive.
	if r.broker == nil {
		r.startBroker()
	}
	if r.child != nil {
		r.killChild()
	}
	if r.agent != nil && r.full != "" {
		r.stopAgent(10 * time.Second)
	}
	if r.agent == nil {
		r.startAgent(false, "")
	}
	for i := range r.tails {
		r.tailAppend(i, 5)
	}
	r.tailUnterminated(r.rng.IntN(2))
	r.syslogTCP(true)
	r.tcpClient(true)
	r.httpClient(true)
	r.spoolWhole(r.spool)
	r.spoolWhole(r.spoolD)
	r.clients.Wait()
	for _, f := range r.allTails() {
		for _, ln := range f.lines {
			r.led.require(ln.tok, "in tailed file "+filepath.Base(f.path)+" at the end")
		}
	}

	// Every spooled file is to be completed (the drain waits for it): all their lines.
	r.led.mu.Lock()
	for _, it := range r.led.items {
		if k := it.tok[0]; (k == 's' || k == 'd') && !it.required {
			it.required, it.why = true, "in a spooled file"
		}
	}
	r.led.mu.Unlock()
	recs := r.drain()
	r.stopAgent(10 * time.Second)
	r.agent = nil
	r.checkRecords(recs)
	r.checkSpool()
	r.checkCounters(recs)
	r.broker.Stop()
	r.broker = nil
	goleak.VerifyNone(t, ignore)
}

func chaosFreePort(t *testing.T, udp bool) int {
	if udp {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (r *chaosRun) addr(name string) string { return fmt.Sprintf("127.0.0.1:%d", r.ports[name]) }

// spec is the agent: full names the channel whose disk is "full" in this incarnation.
func (r *chaosRun) spec(full string) Spec {
	ch := func(name string) map[string]string {
		c := map[string]string{"type": "file", "min_free_bytes": "-1", "checkpoint_interval": "200ms", "max_file_bytes": "256k"}
		if name == "net" {
			c["capacity"] = "300" // full while the broker is away: 503s, tcp puts wait
		}
		if name == full {
			c["min_free_bytes"] = strconv.FormatInt(1<<60, 10)
		}
		return c
	}
	sink := func(channel string) map[string]string {
		return map[string]string{"type": "kafka", "channel": channel, "topic": chaosTopic, "dead_letter_topic": chaosDLQ,
			"batch_size": "50", "write_timeout": "2s"}
	}
	sys := func(proto string, port int) map[string]string {
		return map[string]string{"type": "syslog", "protocol": proto, "listen": fmt.Sprintf("127.0.0.1:%d", port), "channels": "sys",
			"interceptors": "tp", "interceptors.tp.type": "static", "interceptors.tp.key": "topic", "interceptors.tp.value": chaosSys}
	}
	return Spec{Name: "chaos", Where: "chaos",
		Sources: map[string]map[string]string{
			"spool": {"type": "spooldir", "dir": r.spool, "channels": "files", "min_age": "1s", "poll_interval": "20ms", "batch_size": "40"},
			"spoold": {"type": "spooldir", "dir": r.spoolD, "channels": "files", "delete_policy": "immediate", "min_age": "-1ms",
				"poll_interval": "20ms", "batch_size": "40"},
			"tail": {"type": "taildir", "filegroups": "app", "filegroups.app": filepath.Join(r.tailDir, `app\d\.log(\.\d+)?`),
				"channels": "files", "poll_interval": "20ms", "batch_size": "40", "idle_timeout": "300ms", "close_idle": "300ms"},
			"tcp":    {"type": "tcp", "listen": r.addr("tcp"), "channels": "net", "batch_size": "20"},
			"http":   {"type": "http", "listen": r.addr("http"), "channels": "net"},
			"systcp": sys("tcp", r.ports["systcp"]),
			"sysudp": sys("udp", r.ports["sysudp"]),
		},
		Channels: map[string]map[string]string{"files": ch("files"), "net": ch("net"), "sys": ch("sys")},
		Sinks:    map[string]map[string]string{"kfiles": sink("files"), "knet": sink("net"), "ksys": sink("sys")},
	}
}

func (r *chaosRun) brokers() []string { return []string{fmt.Sprintf("127.0.0.1:%d", r.bport)} }

func (r *chaosRun) startAgent(child bool, full string) {
	r.t.Helper()
	spec := r.spec(full)
	if child {
		cfg, _ := json.Marshal(crashConfig{DataDir: r.data, Brokers: r.brokers(), Spec: spec})
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(cfg))
		cmd.Stdout, cmd.Stderr = r.logf, r.logf
		if err := cmd.Start(); err != nil {
			r.t.Fatal(err)
		}
		r.child = cmd
		r.counts["start child"]++
		return
	}
	a, err := Build(spec, Env{DataDir: r.data, Brokers: r.brokers(), Topic: chaosTopic, Log: testLog(r.t), Metrics: r.metrics})
	if err != nil {
		r.t.Fatal(err)
	}
	// A restart on the same ports may find one still held for a moment.
	for i := 0; ; i++ {
		if err = a.Start(context.Background()); err == nil {
			break
		}
		if i == 50 {
			r.t.Fatalf("cannot start the agent: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.agent, r.full = a, full
	r.note("agent started (full %q)", full)
	if full != "" {
		r.counts["start, disk full: "+full]++
	} else {
		r.counts["start"]++
	}
}

func (r *chaosRun) stopAgent(d time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := r.agent.Stop(ctx)
	r.note("agent stopped (%v): %v", d, err)
	if err != nil && d >= time.Second {
		r.t.Errorf("agent stop: %v", err)
	}
	r.agent = nil
}

func (r *chaosRun) killChild() {
	r.child.Process.Signal(syscall.SIGKILL)
	r.child.Wait()
	r.child = nil
	r.kills++
	r.note("agent child killed")
}

func (r *chaosRun) startBroker() {
	r.broker = r.be.Start(r.t, r.bdir, r.bport, nil)
}

func (r *chaosRun) adm() (*kadm.Client, func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers()...))
	if err != nil {
		r.t.Fatal(err)
	}
	return kadm.NewClient(cl), cl.Close
}

// op runs one operation chosen by the seed.
func (r *chaosRun) op() {
	type choice struct {
		name   string
		weight int
		fn     func()
	}
	choices := []choice{
		{"spool whole", 6, func() { r.spoolWhole([]string{r.spool, r.spoolD}[r.rng.IntN(2)]) }},
		{"spool slow", 2, r.spoolSlow},
		{"spool empty", 1, func() { r.spoolDrop([]string{r.spool, r.spoolD}[r.rng.IntN(2)], nil, false) }},
		{"spool gzip", 1, r.spoolGzip},
		{"tail append", 8, func() { r.tailAppend(r.rng.IntN(2), 1+r.rng.IntN(60)) }},
		{"tail rename", 2, func() { r.tailRename(r.rng.IntN(2)) }},
		{"tail copytruncate", 2, func() { r.tailCopyTruncate(r.rng.IntN(2)) }},
		{"tail truncate", 1, func() { r.tailTruncate(r.rng.IntN(2)) }},
		{"tail remove", 2, r.tailRemove},
		{"tcp", 4, func() { r.tcpClient(false) }},
		{"http", 4, func() { r.httpClient(false) }},
		{"syslog udp", 2, r.syslogUDP},
		{"syslog tcp", 2, func() { r.syslogTCP(false) }},
		{"broker", 2, r.toggleBroker},
		{"partitions", 1, r.addPartitions},
		{"recreate sys", 1, r.recreateSys},
		{"recreate events", 1, r.recreateEvents},
		{"agent", 3, r.toggleAgent},
		{"agent restart", 1, func() {
			if r.agent != nil || r.child != nil {
				r.toggleAgent()
			}
			r.toggleAgent()
		}},
	}
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	n := r.rng.IntN(total)
	for _, c := range choices {
		if n < c.weight {
			r.counts[c.name]++
			c.fn()
			return
		}
		n -= c.weight
	}
}

// --- spooling directories ---

// spoolLines makes a file's lines: JSON, malformed JSON, invalid UTF-8 and binary (dead
// letters), CRLF ends, and sometimes no final newline.
func (r *chaosRun) spoolLines(kind string) []byte {
	var b bytes.Buffer
	n := 1 + r.rng.IntN(60)
	for i := 0; i < n; i++ {
		tok := r.led.tok(kind)
		it := &chaosItem{tok: tok}
		switch x := r.rng.IntN(20); {
		case x == 0:
			it.value, it.dlq = tok+" invalid \xff\xfe utf-8", true
		case x == 1:
			it.value, it.dlq = tok+" binary \x00\x01", true
		case x == 2:
			it.value = `{"tok":"` + tok + `", "user_id": broken`
		default:
			it.value = fmt.Sprintf(`{"tok":%q,"user_id":"u%d","item_id":"i%d"}`, tok, r.rng.IntN(50), r.rng.IntN(500))
		}
		r.led.add(it)
		b.WriteString(it.value)
		switch {
		case i == n-1 && r.rng.IntN(4) == 0: // no final newline
		case r.rng.IntN(5) == 0:
			b.WriteString("\r\n")
		default:
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// spoolName returns a name not pending in dir; names repeat once their file completed.
func (r *chaosRun) spoolName(dir, ext string) string {
	for {
		name := fmt.Sprintf("f%02d%s", r.rng.IntN(8), ext)
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return name
		}
		r.names++
		if r.names > 1000 {
			name = fmt.Sprintf("u%d%s", r.names, ext)
			return name
		}
	}
}

func (r *chaosRun) spoolDrop(dir string, content []byte, slow bool) {
	name := r.spoolName(dir, ".jsonl")
	path := filepath.Join(dir, name)
	if dir == r.spool {
		r.spoolDrops++
	}
	if !slow {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, content, 0o644); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	// Written in place in a few pieces: min_age keeps the source off it until done.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	for len(content) > 0 {
		n := min(len(content), 1+r.rng.IntN(200))
		if _, err := f.Write(content[:n]); err != nil {
			r.t.Fatal(err)
		}
		content = content[n:]
		time.Sleep(time.Millisecond)
	}
	f.Close()
}

func (r *chaosRun) spoolWhole(dir string) {
	kind := "s"
	if dir == r.spoolD {
		kind = "d"
	}
	r.spoolDrop(dir, r.spoolLines(kind), false)
}

func (r *chaosRun) spoolSlow() { r.spoolDrop(r.spool, r.spoolLines("s"), true) }

func (r *chaosRun) spoolGzip() {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(r.spoolLines("s"))
	zw.Close()
	name := r.spoolName(r.spool, ".jsonl.gz")
	tmp := filepath.Join(r.spool, "."+name)
	if err := os.WriteFile(tmp, zb.Bytes(), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.spool, name)); err != nil {
		r.t.Fatal(err)
	}
	r.spoolDrops++
}

// --- tailed files ---

func (r *chaosRun) allTails() []*chaosTail {
	var out []*chaosTail
	for _, f := range r.tails {
		if f != nil {
			out = append(out, f)
		}
	}
	return append(out, r.rotated...)
}

func (r *chaosRun) tailAppend(i, n int) { r.tailWrite(i, n, true) }

func (r *chaosRun) tailWrite(i, n int, newline bool) {
	f := r.tails[i]
	if f == nil {
		f = &chaosTail{path: filepath.Join(r.tailDir, fmt.Sprintf("app%d.log", i))}
		r.tails[i] = f
	}
	var b bytes.Buffer
	var lines []chaosTailLine
	for j := 0; j < n; j++ {
		tok := r.led.tok("t")
		v := fmt.Sprintf("%s app%d %s", tok, i, strings.Repeat("x", r.rng.IntN(80)))
		r.led.add(&chaosItem{tok: tok, value: v})
		b.WriteString(v)
		if newline || j < n-1 {
			b.WriteByte('\n')
		}
		lines = append(lines, chaosTailLine{tok: tok, end: int64(len(f.data) + b.Len())})
	}
	fh, err := os.OpenFile(f.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := fh.Write(b.Bytes()); err != nil {
		r.t.Fatal(err)
	}
	fi, _ := fh.Stat()
	fh.Close()
	f.ino = chaosInode(fi)
	r.note("append %s ino %d: %d lines %s..%s, bytes %d..%d", filepath.Base(f.path), f.ino, n, lines[0].tok, lines[n-1].tok, len(f.data), len(f.data)+b.Len())
	f.data = append(f.data, b.Bytes()...)
	f.lines = append(f.lines, lines...)
}

// tailUnterminated ends a tailed file with a line without its newline: delivered once
// the file has been idle for idle_timeout (only at the end: a line completed later would
// be two events).
func (r *chaosRun) tailUnterminated(i int) { r.tailWrite(i, 1, false) }

func (r *chaosRun) note(format string, args ...any) {
	r.journal = append(r.journal, time.Now().Format("15:04:05.000000 ")+fmt.Sprintf(format, args...))
}

func (r *chaosRun) rotatedName(f *chaosTail) string {
	r.rotations++
	return fmt.Sprintf("%s.%d", f.path, r.rotations)
}

func (r *chaosRun) tailRename(i int) {
	f := r.tails[i]
	if f == nil {
		return
	}
	to := r.rotatedName(f)
	if err := os.Rename(f.path, to); err != nil {
		r.t.Fatal(err)
	}
	r.note("rename %s ino %d to %s", filepath.Base(f.path), f.ino, filepath.Base(to))
	f.path = to
	r.rotated = append(r.rotated, f)
	r.tails[i] = nil
	if r.rng.IntN(2) == 0 {
		r.tailAppend(i, 1+r.rng.IntN(20)) // the application logs on at once
	}
	r.trimRotated()
}

func (r *chaosRun) tailCopyTruncate(i int) {
	f := r.tails[i]
	if f == nil {
		return
	}
	cp := &chaosTail{path: r.rotatedName(f), data: append([]byte(nil), f.data...), lines: append([]chaosTailLine(nil), f.lines...)}
	if err := os.WriteFile(cp.path, cp.data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	fi, err := os.Stat(cp.path)
	if err != nil {
		r.t.Fatal(err)
	}
	cp.ino = chaosInode(fi)
	r.note("copy %s ino %d to %s ino %d (%d bytes)", filepath.Base(f.path), f.ino, filepath.Base(cp.path), cp.ino, len(cp.data))
	r.rotated = append(r.rotated, cp)
	r.truncate(f)
	if r.rng.IntN(2) == 0 {
		r.tailAppend(i, 1+r.rng.IntN(60))
	}
	r.trimRotated()
}

func (r *chaosRun) tailTruncate(i int) {
	if f := r.tails[i]; f != nil {
		r.truncate(f)
		if r.rng.IntN(2) == 0 {
			r.tailAppend(i, 1+r.rng.IntN(60))
		}
	}
}

func (r *chaosRun) truncate(f *chaosTail) {
	r.note("truncate %s ino %d", filepath.Base(f.path), f.ino)
	r.destroyed(f)
	if err := os.Truncate(f.path, 0); err != nil {
		r.t.Fatal(err)
	}
	f.data, f.lines = nil, nil
}

func (r *chaosRun) tailRemove() {
	if len(r.rotated) > 0 && r.rng.IntN(4) != 0 {
		r.removeRotated(r.rng.IntN(len(r.rotated)))
		return
	}
	i := r.rng.IntN(2)
	if f := r.tails[i]; f != nil {
		r.note("remove %s ino %d", filepath.Base(f.path), f.ino)
		r.destroyed(f)
		if err := os.Remove(f.path); err != nil {
			r.t.Fatal(err)
		}
		r.tails[i] = nil
	}
}

func (r *chaosRun) removeRotated(j int) {
	f := r.rotated[j]
	r.note("remove %s ino %d", filepath.Base(f.path), f.ino)
	r.destroyed(f)
	if err := os.Remove(f.path); err != nil {
		r.t.Fatal(err)
	}
	r.rotated = append(r.rotated[:j], r.rotated[j+1:]...)
}

// trimRotated keeps at most four rotated files, as logrotate's rotate 4.
func (r *chaosRun) trimRotated() {
	for len(r.rotated) > 4 {
		r.removeRotated(0)
	}
}

// destroyed is called before f's lines leave the disk (truncated, removed): the lines
// the agent's position file says it delivered must be in Kafka; the others may be lost.
func (r *chaosRun) destroyed(f *chaosTail) {
	var ps []struct {
		Inode uint64 `json:"inode"`
		Pos   int64  `json:"pos"`
		Head  string `json:"head"`
	}
	// The agent rewrites the file in place: a torn read is retried, then taken as no
	// position (which requires nothing).
	for i := 0; i < 5; i++ {
		data, err := os.ReadFile(filepath.Join(r.data, "ingest", "chaos", "tail.positions.json"))
		if err != nil {
			return
		}
		if err = json.Unmarshal(data, &ps); err == nil {
			break
		}
		ps = nil
		time.Sleep(time.Millisecond)
	}
	for _, p := range ps {
		if p.Inode != f.ino || p.Pos > int64(len(f.data)) {
			continue
		}
		if n := min(p.Pos, 64); n > 0 && fmt.Sprintf("%08x", crc32.ChecksumIEEE(f.data[:n])) != p.Head {
			continue // a position of an earlier file with this inode, or of content truncated away
		}
		for _, ln := range f.lines {
			if ln.end <= p.Pos {
				r.led.require(ln.tok, "behind the saved position of "+filepath.Base(f.path)+" before it was truncated or removed")
			}
		}
	}
}

// --- sockets ---

func (r *chaosRun) tcpClient(final bool) {
	var items []*chaosItem
	var b bytes.Buffer
	n := 1 + r.rng.IntN(30)
	for i := 0; i < n; i++ {
		tok := r.led.tok("c")
		it := &chaosItem{tok: tok}
		switch x := r.rng.IntN(12); {
		case x == 0 && !final:
			it.value, it.dlq = tok+" \xff bad utf-8", true
		case x == 1 && !final:
			it.value, it.dlq = tok+" binary \x00", true
		case x == 2 && !final:
			it.value, it.dlq, it.match = tok+" "+strings.Repeat("long ", 150), true, "prefix" // > max_line_bytes 512
		default:
			it.value = fmt.Sprintf(`{"tok":%q,"user_id":"u%d"}`, tok, r.rng.IntN(50))
		}
		r.led.add(it)
		items = append(items, it)
		b.WriteString(it.value)
		if r.rng.IntN(4) == 0 {
			b.WriteByte('\r')
		}
		b.WriteByte('\n')
	}
	var partial *chaosItem
	if !final && r.rng.IntN(3) == 0 {
		tok := r.led.tok("c")
		partial = &chaosItem{tok: tok, value: tok + " cut off mid-li"}
		r.led.add(partial)
	}
	split := r.rng.IntN(b.Len() + 1)
	addr := r.addr("tcp")
	r.clients.Add(1)
	go func() {
		defer r.clients.Done()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		data := b.Bytes()
		// Two writes at a random place: a line may arrive in pieces.
		if _, err := c.Write(data[:split]); err != nil {
			return
		}
		if _, err := c.Write(data[split:]); err != nil {
			return
		}
		sc := bufio.NewScanner(c)
		acked := 0
		for acked < len(items) && sc.Scan() {
			if sc.Text() != "OK" {
				break
			}
			r.led.require(items[acked].tok, "acknowledged by the tcp source (OK)")
			acked++
		}
		if partial != nil {
			c.Write([]byte(partial.value))
		}
	}()
}

func (r *chaosRun) httpClient(final bool) {
	var items []*chaosItem
	var body bytes.Buffer
	kind := r.rng.IntN(10)
	if final {
		kind = 9
	}
	switch {
	case kind == 0: // a malformed Flume array: 400, nothing accepted
		tok := r.led.tok("h")
		r.led.add(&chaosItem{tok: tok, value: tok})
		fmt.Fprintf(&body, `[{"headers":{},"body":"%s"`, tok)
	case kind == 1: // a Flume array
		body.WriteString("[")
		for i := 0; i < 1+r.rng.IntN(5); i++ {
			tok := r.led.tok("h")
			it := &chaosItem{tok: tok, value: tok + " flume body"}
			r.led.add(it)
			items = append(items, it)
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `{"headers":{"h":"v%d"},"body":%q}`, i, it.value)
		}
		body.WriteString("]")
	default: // JSON lines, some not JSON
		for i := 0; i < 1+r.rng.IntN(30); i++ {
			tok := r.led.tok("h")
			it := &chaosItem{tok: tok, value: fmt.Sprintf(`{"tok":%q,"user_id":"u%d"}`, tok, r.rng.IntN(50))}
			if !final && r.rng.IntN(10) == 0 {
				it.value, it.dlq = tok+" not json", true
			}
			r.led.add(it)
			items = append(items, it)
			body.WriteString(it.value + "\n")
		}
	}
	cut := !final && kind == 2 // the client goes away mid-body
	addr := r.addr("http")
	r.clients.Add(1)
	go func() {
		defer r.clients.Done()
		if cut {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", body.Len()+100)
			c.Write(body.Bytes())
			c.Close()
			return
		}
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for try := 0; try < 3; try++ {
			resp, err := cl.Post("http://"+addr+"/", "application/json", bytes.NewReader(body.Bytes()))
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				for _, it := range items {
					r.led.require(it.tok, "acknowledged by the http source (200)")
				}
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
}

// syslogMsg makes one message: RFC 5424 or 3164, or garbage (unparsable: dead letter).
func (r *chaosRun) syslogMsg(garbage bool) (*chaosItem, string) {
	tok := r.led.tok("y")
	msg := tok + " hello from syslog"
	it := &chaosItem{tok: tok, value: msg, match: "suffix", sys: true}
	var raw string
	switch {
	case garbage:
		raw, it.value, it.match, it.dlq = msg+" without a PRI", msg+" without a PRI", "exact", true
	case r.rng.IntN(2) == 0:
		raw = fmt.Sprintf("<%d>1 2026-11-27T01:02:03.004Z host%d app %d MID - %s", r.rng.IntN(192), r.rng.IntN(3), r.rng.IntN(999), msg)
	default:
		raw = fmt.Sprintf("<%d>Nov 27 01:02:03 host%d app[%d]: %s", r.rng.IntN(192), r.rng.IntN(3), r.rng.IntN(999), msg)
	}
	r.led.add(it)
	return it, raw
}

func (r *chaosRun) syslogUDP() {
	var msgs []string
	for i := 0; i < 1+r.rng.IntN(10); i++ {
		_, raw := r.syslogMsg(r.rng.IntN(8) == 0)
		msgs = append(msgs, raw)
	}
	c, err := net.Dial("udp", r.addr("sysudp"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		c.Write([]byte(m))
	}
}

// syslogTCP sends newline-framed or octet-counted messages; a bad octet count or a
// connection closed mid-frame breaks some off. A final one's messages are required once
// the connection is closed and the agent has read them.
func (r *chaosRun) syslogTCP(final bool) {
	octet := r.rng.IntN(2) == 0
	var b bytes.Buffer
	var items []*chaosItem
	for i := 0; i < 1+r.rng.IntN(20); i++ {
		it, raw := r.syslogMsg(!final && r.rng.IntN(8) == 0 && (!octet || i > 0))
		items = append(items, it)
		if octet {
			fmt.Fprintf(&b, "%d %s", len(raw), raw)
		} else {
			b.WriteString(raw + "\n")
		}
	}
	data := b.Bytes()
	if !final {
		switch r.rng.IntN(4) {
		case 0: // cut mid-frame: a newline-framed tail is delivered as it is
			data = data[:r.rng.IntN(len(data))]
			if frag := data[bytes.LastIndexByte(data, '\n')+1:]; !octet && len(frag) > 0 {
				r.led.mu.Lock()
				r.led.fragments = append(r.led.fragments, string(frag))
				r.led.mu.Unlock()
			}
		case 1:
			if octet { // a length that is no length: the connection is closed
				data = append(data, "12x34 junk"...)
			}
		}
	}
	addr := r.addr("systcp")
	r.clients.Add(1)
	go func() {
		defer r.clients.Done()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			if final {
				r.t.Errorf("final syslog client: %v", err)
			}
			return
		}
		c.Write(data)
		if final {
			// Wait for the source to close its end after reading everything.
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
			for _, it := range items {
				r.led.require(it.tok, "sent to the syslog tcp source in the calm phase")
			}
		}
		c.Close()
	}()
}

// --- broker and agent ---

func (r *chaosRun) toggleBroker() {
	if r.broker != nil {
		r.broker.Stop()
		r.broker = nil
		return
	}
	r.startBroker()
}

func (r *chaosRun) addPartitions() {
	if r.broker == nil {
		return
	}
	adm, done := r.adm()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.CreatePartitions(ctx, 1, chaosTopic); err != nil {
		r.t.Logf("add partition: %v", err)
	}
}

func (r *chaosRun) recreate(topic string, partitions int32) {
	adm, done := r.adm()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := adm.DeleteTopics(ctx, topic); err != nil || resp.Error() != nil {
		r.t.Fatalf("delete %s: %v %v", topic, err, resp.Error())
	}
	for i := 0; i < 100; i++ {
		resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("cannot create %s again", topic)
}

// recreateSys deletes and creates the syslog topic while the sink may be writing to it
// (syslog is not acknowledged: what it held is not required).
func (r *chaosRun) recreateSys() {
	if r.broker != nil {
		r.recreate(chaosSys, 1)
	}
}

// recreateEvents stops the agent, reads the topic (what it holds was in Kafka), deletes
// it and creates it with another partition count.
func (r *chaosRun) recreateEvents() {
	if r.broker == nil {
		return
	}
	if r.child != nil {
		r.killChild()
	}
	if r.agent != nil {
		r.stopAgent(10 * time.Second)
	}
	r.snapshots = append(r.snapshots, kafkatest.ReadAll(r.t, r.broker.Addr(), chaosTopic)...)
	r.recreate(chaosTopic, int32(2+r.rng.IntN(3)))
}

func (r *chaosRun) toggleAgent() {
	switch {
	case r.child != nil:
		r.killChild()
	case r.agent != nil:
		switch r.rng.IntN(3) {
		case 0:
			r.counts["stop, deadline passed"]++
			r.stopAgent(time.Duration(r.rng.IntN(20)) * time.Millisecond)
		default:
			r.stopAgent(10 * time.Second)
		}
	default:
		switch x := r.rng.IntN(6); {
		case x == 0 && r.kills < r.maxKills:
			r.startAgent(true, "")
		case x == 1:
			r.startAgent(false, []string{"files", "net", "sys"}[r.rng.IntN(3)])
		default:
			r.startAgent(false, "")
		}
	}
}

// --- the end ---

func (r *chaosRun) readTopics() []kafkatest.Record {
	var out []kafkatest.Record
	out = append(out, r.snapshots...)
	for _, topic := range []string{chaosTopic, chaosDLQ, chaosSys} {
		out = append(out, kafkatest.ReadAll(r.t, r.broker.Addr(), topic)...)
	}
	return out
}

func (r *chaosRun) missing(recs []kafkatest.Record) []*chaosItem {
	have := map[string]bool{}
	for _, rec := range recs {
		if tok := chaosTokRe.FindString(rec.Value); tok != "" {
			have[tok] = true
		}
	}
	var out []*chaosItem
	r.led.mu.Lock()
	defer r.led.mu.Unlock()
	for _, it := range r.led.items {
		if it.required && !have[it.tok] {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].tok < out[j].tok })
	return out
}

// drain waits until every required item is in Kafka and both spool directories are
// done, or the deadline passes.
func (r *chaosRun) drain() []kafkatest.Record {
	deadline := time.Now().Add(90 * time.Second)
	for {
		recs := r.readTopics()
		miss := r.missing(recs)
		pending := r.pendingSpool()
		if len(miss) == 0 && len(pending) == 0 {
			return recs
		}
		if time.Now().After(deadline) {
			for i, it := range miss {
				if i < 20 {
					r.t.Errorf("lost: %q (%s)", it.value, it.why)
				}
			}
			if len(miss) > 0 {
				r.t.Errorf("%d required lines are not in Kafka", len(miss))
			}
			if len(pending) > 0 {
				r.t.Errorf("spool files never completed: %v", pending)
			}
			return recs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *chaosRun) pendingSpool() []string {
	var out []string
	for _, dir := range []string{r.spool, r.spoolD} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".COMPLETED") {
				continue
			}
			out = append(out, filepath.Join(filepath.Base(dir), n))
		}
	}
	return out
}

func (r *chaosRun) checkRecords(recs []kafkatest.Record) {
	t := r.t
	bad := 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	idOf := map[string]string{}
	tokOf := map[string]string{}
	copies := 0
	fragment := func(rec kafkatest.Record) bool {
		if rec.Topic != chaosDLQ && rec.Topic != chaosSys {
			return false
		}
		for _, f := range r.led.fragments {
			if strings.HasSuffix(f, rec.Value) {
				return true
			}
		}
		return false
	}
	for _, rec := range recs {
		if fragment(rec) {
			continue
		}
		tok := chaosTokRe.FindString(rec.Value)
		it := r.led.items[tok]
		if it == nil {
			fail("record never sent: %s/%d@%d %q %v", rec.Topic, rec.Partition, rec.Offset, rec.Value, rec.Headers)
			continue
		}
		ok := false
		switch it.match {
		case "exact":
			ok = rec.Value == it.value
		case "prefix":
			ok = strings.HasPrefix(it.value, rec.Value) && len(rec.Value) < len(it.value)
		case "suffix":
			ok = strings.HasSuffix(rec.Value, it.value)
		}
		if !ok {
			fail("record %s/%d@%d %q does not match what was sent: %q (%s)", rec.Topic, rec.Partition, rec.Offset, rec.Value, it.value, it.match)
		}
		wantTopic := chaosTopic
		switch {
		case it.dlq:
			wantTopic = chaosDLQ
		case it.sys:
			wantTopic = chaosSys
		}
		if rec.Topic != wantTopic {
			fail("record %q in %s, want %s", rec.Value, rec.Topic, wantTopic)
		}
		if errh := rec.Headers[ingest.HeaderError]; (errh != "") != it.dlq {
			fail("record %q in %s has error header %q", rec.Value, rec.Topic, errh)
		}
		id := rec.Headers[ingest.HeaderEventID]
		if id == "" {
			fail("record %q has no %s", rec.Value, ingest.HeaderEventID)
			continue
		}
		if o, ok := tokOf[id]; ok && o != tok {
			fail("records of %s and %s share the event id %s", o, tok, id)
		}
		tokOf[id] = tok
		if tok[0] == 's' || tok[0] == 'd' { // a spooled line is read again with its id
			if prev, ok := idOf[tok]; ok {
				copies++
				if prev != id {
					fail("copies of %q carry ids %s and %s", rec.Value, prev, id)
				}
			}
			idOf[tok] = id
		}
	}
	sent, req, dead := map[string]int{}, map[string]int{}, map[string]int{}
	for _, it := range r.led.items {
		k := it.tok[:1]
		sent[k]++
		if it.required {
			req[k]++
		}
	}
	for _, rec := range recs {
		if tok := chaosTokRe.FindString(rec.Value); tok != "" && rec.Topic == chaosDLQ {
			dead[tok[:1]]++
		}
	}
	t.Logf("%d records (%d from deleted topics), %d spooled copies; by input (s spool, d spool-delete, t tail, c tcp, h http, y syslog): sent %v, required %v, dead letters %v",
		len(recs), len(r.snapshots), copies, sent, req, dead)
}

func (r *chaosRun) checkSpool() {
	completed := 0
	ents, _ := os.ReadDir(r.spool)
	for _, e := range ents {
		switch n := e.Name(); {
		case strings.HasSuffix(n, ".COMPLETED"):
			completed++
		case strings.HasPrefix(n, ".") || e.IsDir():
		default:
			r.t.Errorf("spool: %s left (quarantined or never completed)", n)
		}
	}
	if completed != r.spoolDrops {
		r.t.Errorf("spool: %d files completed, %d dropped", completed, r.spoolDrops)
	}
	ents, _ = os.ReadDir(r.spoolD)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			r.t.Errorf("spool-delete: %s left (delete_policy immediate)", e.Name())
		}
	}
}

// checkCounters: the in-process agents counted the bad input they read. Per source,
// dead letters of its input mean bad_input was counted (unless only a child process,
// whose counters are its own, could have read them).
func (r *chaosRun) checkCounters(recs []kafkatest.Record) {
	if r.counts["start child"] > 0 {
		return
	}
	sources := map[byte][]string{'s': {"spool"}, 'd': {"spoold"}, 't': {"tail"}, 'c': {"tcp"}, 'h': {"http"}, 'y': {"systcp", "sysudp"}}
	dead := map[byte]int{}
	for _, rec := range recs {
		if tok := chaosTokRe.FindString(rec.Value); rec.Topic == chaosDLQ && tok != "" {
			dead[tok[0]]++
		}
	}
	for kind, n := range dead {
		var counted int64
		for _, name := range sources[kind] {
			counted += r.metrics.Component("chaos", "source", name, "").Get("bad_input")
		}
		if counted == 0 {
			r.t.Errorf("%d dead letters from source %v, but its bad_input counter is 0", n, sources[kind])
		}
	}
}

func chaosInode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
