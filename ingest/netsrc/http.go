package netsrc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// HTTPOptions configure an HTTP source.
type HTTPOptions struct {
	// Listen is host:port; port 0 picks one (see Addr).
	Listen string
	// MaxBodyBytes refuses larger requests with 413; 0 = 16 MiB.
	MaxBodyBytes int64
	// MaxLineBytes cuts longer lines (with an error header); 0 = 1 MiB.
	MaxLineBytes int
	// RetryAfter is the Retry-After of a 503; 0 = 1s.
	RetryAfter time.Duration
	Log        *slog.Logger
	C          *ingest.Counters
}

// HTTP accepts POSTs of JSON lines (one event per line; a line that is not JSON is
// delivered with an error header) or of Flume's JSONHandler array
// ([{"headers":{…},"body":"…"}]). The answer is 200 once every event is in the channel,
// 503 with Retry-After when the channel is full (nothing was accepted), 400 for a
// malformed array, 413 for an oversized body.
type HTTP struct {
	name string
	opts HTTPOptions
	out  *ingest.Processor
	ln   net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
	once sync.Once
}

// NewHTTP checks options; Start listens.
func NewHTTP(name string, opts HTTPOptions, out *ingest.Processor) (*HTTP, error) {
	if opts.Listen == "" {
		return nil, fmt.Errorf("http source %s: no listen address", name)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 1 << 20
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &HTTP{name: name, opts: opts, out: out}, nil
}

func (s *HTTP) Name() string { return s.name }

// Addr is the bound address once started.
func (s *HTTP) Addr() string { return s.ln.Addr().String() }

func (s *HTTP) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("http source %s: cannot listen on %s: %w", s.name, s.opts.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Error("http source stopped", "source", s.name, "err", err)
		}
	}()
	s.opts.Log.Info("http source listening", "source", s.name, "addr", ln.Addr().String())
	return nil
}

// flumeEvent is one element of Flume's JSONHandler array.
type flumeEvent struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func (s *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST JSON lines (or a Flume JSON event array)", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.opts.C.Add("requests_rejected", 1)
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, s.opts.MaxBodyBytes+1)
	}
	data, err := io.ReadAll(body)
	if err != nil || int64(len(data)) > s.opts.MaxBodyBytes {
		s.opts.C.Add("requests_rejected", 1)
		http.Error(w, fmt.Sprintf("body larger than %d bytes", s.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	var evs []ingest.Event
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		var fe []flumeEvent
		if err := json.Unmarshal(t, &fe); err != nil {
			s.opts.C.Add("requests_rejected", 1)
			http.Error(w, "bad JSON event array: "+err.Error(), http.StatusBadRequest)
			return
		}
		for i, e := range fe {
			body := []byte(e.Body)
			if e.Headers[ingest.HeaderBodyEncoding] == "base64" {
				if body, err = base64.StdEncoding.DecodeString(e.Body); err != nil {
					s.opts.C.Add("requests_rejected", 1)
					http.Error(w, fmt.Sprintf("event %d: bad base64 body: %v", i, err), http.StatusBadRequest)
					return
				}
				delete(e.Headers, ingest.HeaderBodyEncoding)
			}
			evs = append(evs, ingest.Event{Headers: ingest.HeadersOf(e.Headers), Body: body})
		}
	} else {
		lr := ingest.NewLineReader(bytes.NewReader(data), s.opts.MaxLineBytes)
		add := func(ln ingest.Line) {
			if len(bytes.TrimSpace(ln.Text)) == 0 {
				return
			}
			ev := ingest.LineEvent(ln)
			if ev.Headers.Get(ingest.HeaderError) == "" && !json.Valid(ev.Body) {
				ev.SetHeader(ingest.HeaderError, "invalid json")
			}
			evs = append(evs, ev)
		}
		for {
			ln, err := lr.Next()
			if err != nil {
				if last, ok := lr.Flush(); ok {
					add(last)
				}
				break
			}
			add(ln)
		}
	}
	if len(evs) == 0 {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, `{"accepted":0}`)
		return
	}
	if err := s.out.TryPut(evs); err != nil {
		if errors.Is(err, ingest.ErrFull) {
			s.opts.C.Add("requests_throttled", 1)
			w.Header().Set("Retry-After", strconv.Itoa(int((s.opts.RetryAfter+time.Second-1)/time.Second)))
			http.Error(w, "channel full, retry later: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		s.opts.C.Add("requests_failed", 1)
		http.Error(w, "cannot accept events: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"accepted\":%d}\n", len(evs))
}

// Stop shuts the server down, letting requests in progress finish until ctx ends.
func (s *HTTP) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if s.srv == nil {
			return
		}
		err = s.srv.Shutdown(ctx)
		s.wg.Wait()
	})
	return err
}
