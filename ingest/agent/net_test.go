package agent

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
