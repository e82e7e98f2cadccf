package netsrc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
)

// FuzzHTTPBody posts arbitrary bodies (JSON lines or a Flume JSON event array, plain or
// gzip) to the http source's handler. Whatever the body, the answer is 200 with the count
// of events the channel received, 400 or 413 with nothing received (a request is one
// transaction), never a panic; a JSON-lines body gives one event per non-blank line.
func FuzzHTTPBody(f *testing.F) {
	f.Add([]byte("{\"user_id\":1}\n\nnot json\n"), false)
	f.Add([]byte(`[{"headers":{"a":"b"},"body":"x"},{"body":"y"}]`), false)
	f.Add([]byte(`[{"headers":{"tagpipe.body_encoding":"base64"},"body":"AAEC"}]`), false)
	f.Add([]byte(`[{"headers":{"tagpipe.body_encoding":"base64"},"body":"!!"}]`), false)
	f.Add([]byte(`[{"headers":1}]`), false)
	f.Add([]byte("\xff\xfe{\"a\":1}\r\nline without newline"), false)
	f.Add([]byte("{\"k\":\"0123456789012345678901234567890123456789\"}\n"), true)
	f.Add([]byte("   [   "), false)
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	f.Cleanup(func() { ch.Close() })
	c := ingest.NewMetrics(nil).Component("a", "source", "h", "http")
	s, err := NewHTTP("h", HTTPOptions{Listen: "127.0.0.1:0", MaxBodyBytes: 4096, MaxLineBytes: 64, C: c},
		&ingest.Processor{Channels: []ingest.Channel{ch}, C: c})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		sent := body
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(body)
			_ = zw.Close()
			sent = b.Bytes()
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(sent))
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		got := drain(t, ch)
		switch rec.Code {
		case http.StatusOK:
			var ans struct{ Accepted int }
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				t.Fatalf("200 with %q: %v", rec.Body, err)
			}
			if ans.Accepted != got {
				t.Fatalf("answered %d accepted, the channel got %d", ans.Accepted, got)
			}
			if tb := bytes.TrimSpace(body); len(tb) == 0 || tb[0] != '[' {
				lines := 0
				for _, ln := range bytes.Split(bytes.ReplaceAll(body, []byte("\r"), nil), []byte("\n")) {
					if len(bytes.TrimSpace(ln)) > 0 {
						lines++
					}
				}
				// A line longer than MaxLineBytes is cut into one event, the rest skipped.
				if got > lines {
					t.Fatalf("%d events from %d non-blank lines", got, lines)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if got != 0 {
				t.Fatalf("status %d, yet the channel got %d events", rec.Code, got)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// drain takes and commits everything in ch, returning the count.
func drain(t *testing.T, ch ingest.Channel) int {
	n := 0
	for ch.Stats().Events > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tx, err := ch.Take(ctx, 1<<20)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		n += len(tx.Events())
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
