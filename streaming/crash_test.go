package streaming

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

const childEnv = "TAGPIPE_STREAMING_CRASH_CHILD"

// TestChild is the process the kill -9 test starts and kills: an engine whose output writes
// one file per batch, idempotently by batch id (the warehouse sinks do the same with
// snapshot properties).
func TestChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("only runs as the child of TestKill9ExactlyOnce")
	}
	out := os.Getenv(childEnv + "_OUT")
	j := NewJob("crash", 20*time.Millisecond)
	ForeachBatch(Input(j), "files", func(_ context.Context, b BatchInfo, rs []Record) error {
		path := filepath.Join(out, fmt.Sprintf("%08d.txt", b.ID))
		if _, err := os.Stat(path); err == nil {
			return nil // batch already written before the crash
		}
		var sb strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&sb, "%d %d %s\n", r.Partition, r.Offset, r.Value)
		}
		return fsutil.WriteFile(path, []byte(sb.String()))
	})
	opts := engineOpts(strings.Split(os.Getenv(childEnv+"_BROKERS"), ","), os.Getenv(childEnv+"_CP"))
	opts.MaxRecordsPerPartition = 5000
	e, err := New(j, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKill9ExactlyOnce kills the engine process at random points while records flow and
// restarts it; every record must be output exactly once.
func TestKill9ExactlyOnce(t *testing.T) {
	total := 300_000
	if testing.Short() {
		total = 60_000
	}
	const partitions = 6
	c := newCluster(t, partitions)
	out, cp := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_OUT="+out, childEnv+"_CP="+cp,
			childEnv+"_BROKERS="+strings.Join(c, ","))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// Produce in chunks while the child is killed and restarted.
	produced := 0
	kills := 0
	for produced < total || kills < 8 {
		cmd := start()
		if produced < total {
			chunk := min(total-produced, total/8)
			produce(t, c, partitions, produced, chunk)
			produced += chunk
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		kills++
		seen, dups := readCrashOutput(t, out)
		t.Logf("kill %d: %d records output so far (%d produced), %d duplicates", kills, len(seen), produced, dups)
		if kills > 40 {
			t.Fatal("too many rounds")
		}
	}
	// Final run to completion.
	cmd := start()
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		seen, dups := readCrashOutput(t, out)
		if dups > 0 {
			t.Fatalf("%d duplicate records", dups)
		}
		if len(seen) == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records after restarts", len(seen), total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen, _ := readCrashOutput(t, out)
	for i := range total {
		if !seen[fmt.Sprintf("v%d", i)] {
			t.Fatalf("record v%d missing", i)
		}
	}
	t.Logf("%d records, %d kills, exactly once", total, kills)
}

func readCrashOutput(t *testing.T, dir string) (map[string]bool, int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	dups := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) != 3 {
				t.Fatalf("bad line %q", sc.Text())
			}
			if _, err := strconv.Atoi(fs[1]); err != nil {
				t.Fatal(err)
			}
			if seen[fs[2]] {
				dups++
			}
			seen[fs[2]] = true
		}
		f.Close()
	}
	return seen, dups
}
