package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

const crashChildEnv = "TAGPIPE_INGEST_CRASH_CHILD"

// crashConfig is what the parent hands the child (as JSON in the environment).
type crashConfig struct {
	DataDir string
	Brokers []string
	Spec    Spec
}

// TestCrashChild is not a test on its own: the crash test runs the test binary with
// crashChildEnv set, and this runs the agent until the parent kills it.
func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("only runs as the crash test's child process")
	}
	var cc crashConfig
	if err := json.Unmarshal([]byte(raw), &cc); err != nil {
		t.Fatal(err)
	}
	a, err := Build(cc.Spec, Env{DataDir: cc.DataDir, Brokers: cc.Brokers, Topic: "events",
		Log: testLog(t), Metrics: ingest.NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("child: agent running")
	time.Sleep(2 * time.Minute) // the parent kills us long before
	a.Stop(context.Background())
}

// TestCrashKill9 kills the collector with SIGKILL at random points while it reads a
// 200k-line spool directory and follows a file that is being appended to and rotated,
// restarts it each time, and then checks the topic: every line is there, and the
// duplicates (counted and logged) are bounded by the batches that were in flight at
// each kill.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	const (
		spoolFiles   = 4
		spoolPerFile = 50000
		tailLines    = 30000
		rotateEvery  = 4000
		kills        = 6
		batch        = 1000
	)
	seed := time.Now().UnixNano()
	if s := os.Getenv("TAGPIPE_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (set TAGPIPE_CRASH_SEED to repeat)", seed)
	rng := rand.New(rand.NewSource(seed))

	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			b := be.Start(t, t.TempDir(), 0, map[string]int32{"events": 3})
			defer b.Stop()
			data := t.TempDir()
			spool := filepath.Join(data, "spool")
			logs := filepath.Join(data, "logs")
			os.MkdirAll(spool, 0o755)
			os.MkdirAll(logs, 0o755)
			spec := Spec{Name: "crash", Where: "crash",
				Sources: map[string]map[string]string{
					"spool": {"type": "spooldir", "dir": spool, "channels": "ch", "min_age": "-1ms", "poll_interval": "10ms", "batch_size": fmt.Sprint(batch)},
					"tail": {"type": "taildir", "filegroups": "app", "filegroups.app": filepath.Join(logs, `app\.log(\.\d+)?`), "channels": "ch",
						"poll_interval": "10ms", "batch_size": fmt.Sprint(batch), "close_idle": "500ms"},
				},
				Channels: map[string]map[string]string{"ch": {"type": "file", "min_free_bytes": "-1", "checkpoint_interval": "300ms", "max_file_bytes": "4m"}},
				Sinks:    map[string]map[string]string{"k": {"type": "kafka", "channel": "ch", "batch_size": fmt.Sprint(batch)}},
			}
			cfg, _ := json.Marshal(crashConfig{DataDir: data, Brokers: []string{b.Addr()}, Spec: spec})

			want := map[string]bool{}
			for f := 0; f < spoolFiles; f++ {
				lines := make([]string, spoolPerFile)
				for i := range lines {
					lines[i] = fmt.Sprintf("spool-%d-%06d,%d,payload payload payload", f, i, i%977)
					want[lines[i]] = true
				}
				dropFile(t, spool, fmt.Sprintf("part-%d.csv", f), lines)
			}
			// The tailed file grows and is rotated (rename, then a new file) throughout.
			var wg sync.WaitGroup
			stopWriter := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := filepath.Join(logs, "app.log")
				f, _ := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				rot := 0
				for i := 0; i < tailLines; i++ {
					if i > 0 && i%rotateEvery == 0 {
						rot++
						f.Close()
						os.Rename(path, fmt.Sprintf("%s.%d", path, rot))
						f, _ = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
					}
					fmt.Fprintf(f, "tail-%06d some text\n", i)
					if i%100 == 99 {
						select {
						case <-stopWriter:
							f.Close()
							return
						case <-time.After(2 * time.Millisecond):
						}
					}
				}
				f.Close()
			}()
			defer func() { close(stopWriter); wg.Wait() }()
			for i := 0; i < tailLines; i++ {
				want[fmt.Sprintf("tail-%06d some text", i)] = true
			}

			logf, _ := os.Create(filepath.Join(data, "child.log"))
			defer logf.Close()
			t.Cleanup(func() {
				if t.Failed() {
					logData, _ := os.ReadFile(filepath.Join(data, "child.log"))
					t.Logf("child log tail:\n%s", tail(logData, 6000))
				}
			})
			start := func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
				cmd.Env = append(os.Environ(), crashChildEnv+"="+string(cfg))
				cmd.Stdout, cmd.Stderr = logf, logf
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}
			for k := 0; k < kills; k++ {
				cmd := start()
				d := time.Duration(150+rng.Intn(900)) * time.Millisecond
				time.Sleep(d)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				t.Logf("kill %d after %v", k+1, d)
			}
			wg.Wait()
			cmd := start()
			defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
			if n := kafkatest.Count(t, b.Addr(), "events", int64(len(want)), 60*time.Second); n < int64(len(want)) {
				t.Errorf("topic has %d records, want at least %d", n, len(want))
			}
			// The record count includes duplicates, so it reaches len(want) before the
			// last lines may have arrived: read until every line is there (or a minute
			// has passed, and then what is missing is lost).
			var recs []kafkatest.Record
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				recs = kafkatest.ReadAll(t, b.Addr(), "events")
				have := make(map[string]bool, len(recs))
				for _, r := range recs {
					have[r.Value] = true
				}
				complete := true
				for l := range want {
					if !have[l] {
						complete = false
						break
					}
				}
				if complete || time.Now().After(deadline) {
					break
				}
			}
			seen := map[string]int{}
			idOf, lineOf := map[string]string{}, map[string]string{}
			for _, r := range recs {
				seen[r.Value]++
				// Every copy of a line carries the line's one event id, and no two lines
				// share one: that is what lets streaming drop the copies.
				id := r.Headers[ingest.HeaderEventID]
				if id == "" {
					t.Fatalf("record %q has no %s header", r.Value, ingest.HeaderEventID)
				}
				if prev, ok := idOf[r.Value]; ok && prev != id {
					t.Fatalf("copies of %q carry ids %q and %q", r.Value, prev, id)
				}
				if other, ok := lineOf[id]; ok && other != r.Value {
					t.Fatalf("lines %q and %q share the id %q", other, r.Value, id)
				}
				idOf[r.Value], lineOf[id] = id, r.Value
			}
			missing := 0
			var lost []string
			for l := range want {
				if seen[l] == 0 {
					lost = append(lost, l)
					missing++
				}
			}
			sort.Strings(lost)
			for i, l := range lost {
				if i < 3 || i > len(lost)-3 {
					t.Errorf("line lost: %q", l)
				}
			}
			dups := 0
			for l, n := range seen {
				if !want[l] {
					t.Errorf("unexpected record %q", l)
				}
				dups += n - 1
			}
			t.Logf("%s: %d lines, %d records, %d duplicates after %d kills", be.Name, len(want), len(recs), dups, kills)
			if missing > 0 {
				t.Fatalf("%d lines lost", missing)
			}
			// At-least-once bound: per kill, one sink batch in flight plus one put per source
			// whose tracker/position write was cut off.
			if limit := kills * 3 * batch; dups > limit {
				t.Fatalf("%d duplicates, more than the in-flight bound %d", dups, limit)
			}
		})
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
