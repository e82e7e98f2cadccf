package netsrc

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/internal/chantest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTCPAcks(t *testing.T) {
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1000})
	defer ch.Close()
	s, _ := NewTCP("t", TCPOptions{Listen: "127.0.0.1:0", Ack: true, MaxLineBytes: 10, PeerHeader: "peer"}, &ingest.Processor{Channels: []ingest.Channel{ch}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "héllo\r\nworld\n0123456789abc\n")
	for i := 0; i < 3; i++ {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil || line != "OK\n" {
			t.Fatalf("ack %d = %q, %v", i, line, err)
		}
	}
	evs := chantest.Take(t, ch, 3)
	if string(evs[0].Body) != "héllo" || string(evs[1].Body) != "world" || string(evs[2].Body) != "0123456789" {
		t.Fatalf("bodies %q %q %q", evs[0].Body, evs[1].Body, evs[2].Body)
	}
	if evs[0].Headers.Get("peer") == "" || !strings.HasPrefix(evs[2].Headers.Get("error"), "line too long") {
		t.Fatalf("headers %v %v", evs[0].Headers, evs[2].Headers)
	}
	// Each line gets its own event_id in the channel, so redeliveries can be dropped.
	if a, b := evs[0].Headers.Get(ingest.HeaderEventID), evs[1].Headers.Get(ingest.HeaderEventID); a == "" || a == b {
		t.Fatalf("event ids %q %q", a, b)
	}
}

func TestHTTP(t *testing.T) {
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 3})
	defer ch.Close()
	c := ingest.NewMetrics(nil).Component("a", "source", "h", "http")
	s, _ := NewHTTP("h", HTTPOptions{Listen: "127.0.0.1:0", MaxBodyBytes: 1000, C: c}, &ingest.Processor{Channels: []ingest.Channel{ch}, C: c})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	url := "http://" + s.Addr() + "/"
	post := func(body io.Reader, gz bool) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, url, body)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post(strings.NewReader("{\"user_id\":1}\n\nnot json\n"), false)
	if resp.StatusCode != 200 || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("json lines: %d %s", resp.StatusCode, body)
	}
	// The channel holds 3: two more do not fit → 503 with Retry-After, nothing taken.
	resp, _ = post(strings.NewReader(`[{"headers":{"a":"b"},"body":"x"},{"body":"y"}]`), false)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("full channel: %d %v", resp.StatusCode, resp.Header)
	}
	evs := chantest.Take(t, ch, 2)
	if string(evs[0].Body) != `{"user_id":1}` || evs[0].Headers.Get("error") != "" || evs[1].Headers.Get("error") != "invalid json" {
		t.Fatalf("events %q %v / %q %v", evs[0].Body, evs[0].Headers, evs[1].Body, evs[1].Headers)
	}
	// Now the Flume array fits; gzip bodies are accepted.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`[{"headers":{"a":"b"},"body":"x"},{"body":"y"}]`))
	zw.Close()
	resp, body = post(&gz, true)
	if resp.StatusCode != 200 {
		t.Fatalf("flume array: %d %s", resp.StatusCode, body)
	}
	evs = chantest.Take(t, ch, 2)
	if string(evs[0].Body) != "x" || evs[0].Headers.Get("a") != "b" || string(evs[1].Body) != "y" {
		t.Fatalf("flume events %v", evs)
	}
	if resp, _ = post(strings.NewReader(`[{"body":`), false); resp.StatusCode != 400 {
		t.Fatalf("bad array: %d", resp.StatusCode)
	}
	if resp, _ = post(strings.NewReader(strings.Repeat("x", 2000)), false); resp.StatusCode != 413 {
		t.Fatalf("big body: %d", resp.StatusCode)
	}
	if c.Get("requests_throttled") != 1 || c.Get("requests_rejected") != 2 {
		t.Fatalf("counters: throttled %d rejected %d", c.Get("requests_throttled"), c.Get("requests_rejected"))
	}
}
