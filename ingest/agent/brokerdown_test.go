package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

// TestBrokerDown stops the broker while the collector runs: files keep being read into
// the file channel, and when the broker is back on the same address the collector
// catches up. Nothing is lost.
func TestBrokerDown(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			bdir := t.TempDir()
			b := be.Start(t, bdir, 0, map[string]int32{"events": 2})
			addr := b.Addr()
			data := t.TempDir()
			spool := filepath.Join(data, "spool")
			os.MkdirAll(spool, 0o755)
			spec := fastSpool(DefaultSpec(spool, "events", ""))
			spec.Sinks["kafka"]["write_timeout"] = "2s"
			a := build(t, spec, Env{DataDir: data, Brokers: []string{addr}})
			want := map[string]bool{}
			drop := func(name string, from, n int) {
				var lines []string
				for i := from; i < from+n; i++ {
					l := fmt.Sprintf(`{"user_id":"u%d","seq":%d}`, i%50, i)
					lines = append(lines, l)
					want[l] = true
				}
				dropFile(t, spool, name, lines)
			}
			drop("a.jsonl", 0, 5000)
			kafkatest.WaitCount(t, addr, "events", 5000, 30*time.Second)

			b.Stop()
			drop("b.jsonl", 5000, 20000)
			waitFor(t, "b.jsonl read into the channel", func() bool {
				_, err := os.Stat(filepath.Join(spool, "b.jsonl.COMPLETED"))
				return err == nil
			})
			if n := a.Channel("events").Stats().Events; n == 0 {
				t.Fatal("channel empty while the broker is down")
			} else {
				t.Logf("broker down: %d events buffered in the file channel", n)
			}
			time.Sleep(500 * time.Millisecond) // a few failed deliveries

			b = be.Start(t, bdir, kafkatest.Port(addr), map[string]int32{"events": 2})
			defer b.Stop()
			kafkatest.WaitCount(t, addr, "events", int64(len(want)), 60*time.Second)
			waitFor(t, "channel drained", func() bool { return a.Channel("events").Stats().Events == 0 })
			seen := map[string]int{}
			for _, r := range kafkatest.ReadAll(t, addr, "events") {
				seen[r.Value]++
			}
			for l := range want {
				if seen[l] == 0 {
					t.Fatalf("line lost: %s", l)
				}
			}
			sc := a.env.Metrics.Component("default", "sink", "kafka", "")
			t.Logf("sink: %d delivered, %d failed attempts", sc.Get("success"), sc.Get("failure"))
			if sc.Get("failed_batches") == 0 {
				t.Fatal("no failed delivery counted while the broker was down")
			}
		})
	}
}
