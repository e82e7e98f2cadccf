package agent

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

// TestSocketSourcesToKafka sends lines over tcp (with acks), syslog (tcp and udp) and
// http into one agent and reads them back from the broker.
func TestSocketSourcesToKafka(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			b := be.Start(t, t.TempDir(), 0, map[string]int32{"net": 1})
			defer b.Stop()
			spec := Spec{Name: "n", Where: "n",
				Sources: map[string]map[string]string{
					"tcp":  {"type": "tcp", "listen": "127.0.0.1:0", "channels": "c", "max_line_bytes": "4096"},
					"sys":  {"type": "syslog", "protocol": "tcp", "listen": "127.0.0.1:0", "channels": "c"},
					"sysu": {"type": "syslog", "protocol": "udp", "listen": "127.0.0.1:0", "channels": "c"},
					"web":  {"type": "http", "listen": "127.0.0.1:0", "channels": "c"},
				},
				Channels: map[string]map[string]string{"c": {"type": "memory"}},
				Sinks:    map[string]map[string]string{"k": {"type": "kafka", "channel": "c", "topic": "net"}},
			}
			a := build(t, spec, Env{DataDir: t.TempDir(), Brokers: []string{b.Addr()}})
			addr := func(n string) string { return a.Source(n).(interface{ Addr() string }).Addr() }

			long := strings.Repeat("ü", 2000)
			c, err := net.Dial("tcp", addr("tcp"))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "tcp one\r\n%s\n", long)
			r := bufio.NewReader(c)
			for i := 0; i < 2; i++ {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if l, err := r.ReadString('\n'); l != "OK\n" {
					t.Fatalf("ack = %q %v", l, err)
				}
			}
			c.Close()
			c, _ = net.Dial("tcp", addr("sys"))
			fmt.Fprint(c, "<34>1 2026-01-01T00:00:00Z h app - - - syslog tcp\n")
			c.Close()
			c, _ = net.Dial("udp", addr("sysu"))
			fmt.Fprint(c, "<34>Jan  1 00:00:00 h app: syslog udp")
			c.Close()
			resp, err := http.Post("http://"+addr("web")+"/", "application/x-ndjson", strings.NewReader(`{"user_id":"7","a":"http"}`+"\n"))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("http post: %v %v", resp, err)
			}
			resp.Body.Close()
			kafkatest.WaitCount(t, b.Addr(), "net", 5, 30*time.Second)
			got := map[string]bool{}
			for _, r := range kafkatest.ReadAll(t, b.Addr(), "net") {
				got[r.Value] = true
			}
			for _, w := range []string{"tcp one", long, "syslog tcp", "app: syslog udp", `{"user_id":"7","a":"http"}`} {
				if !got[w] {
					t.Fatalf("missing %.30q in %d records", w, len(got))
				}
			}
		})
	}
}

// TestTieredAgents chains two agents as Flume tiers: an edge agent's spooldir source goes
// through an http sink (gzip) to a central agent's http source and on to Kafka. Every
// line arrives once, with its headers, and a line that is not UTF-8 byte for byte.
func TestTieredAgents(t *testing.T) {
	b := kafkatest.Backends()[0].Start(t, t.TempDir(), 0, map[string]int32{"events": 1})
	defer b.Stop()
	central := build(t, Spec{Name: "central", Where: "central",
		Sources:  map[string]map[string]string{"in": {"type": "http", "listen": "127.0.0.1:0", "channels": "c"}},
		Channels: map[string]map[string]string{"c": {"type": "file"}},
		Sinks:    map[string]map[string]string{"k": {"type": "kafka", "channel": "c", "topic": "events"}},
	}, Env{DataDir: t.TempDir(), Brokers: []string{b.Addr()}})
	endpoint := "http://" + central.Source("in").(interface{ Addr() string }).Addr() + "/"

	data := t.TempDir()
	spool := filepath.Join(data, "spool")
	os.MkdirAll(spool, 0o755)
	build(t, fastSpool(Spec{Name: "edge", Where: "edge",
		Sources:  map[string]map[string]string{"r": {"type": "spooldir", "dir": spool, "channels": "c", "file_header": "true"}},
		Channels: map[string]map[string]string{"c": {"type": "file"}},
		Sinks:    map[string]map[string]string{"up": {"type": "http", "channel": "c", "endpoint": endpoint, "gzip": "true", "batch_size": "2"}},
	}), Env{DataDir: data})
	dropFile(t, spool, "x.log", []string{"one", "two", "bad\xff\xfe", "four", "five"})
	kafkatest.WaitCount(t, b.Addr(), "events", 5, 30*time.Second)
	var got []string
	for _, r := range kafkatest.ReadAll(t, b.Addr(), "events") {
		got = append(got, r.Value)
		if !strings.HasSuffix(r.Headers["file"], "x.log") {
			t.Errorf("record %q lost its file header: %v", r.Value, r.Headers)
		}
		if _, ok := r.Headers[ingest.HeaderBodyEncoding]; ok {
			t.Errorf("record %q kept the body encoding header", r.Value)
		}
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", []string{"one", "two", "bad\xff\xfe", "four", "five"}) {
		t.Fatalf("central tier got %q", got)
	}
}
