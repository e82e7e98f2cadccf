package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/tagpipe/tagpipe/ingest"
)

// HTTPOptions configure an http sink.
type HTTPOptions struct {
	// Endpoint is the URL batches are POSTed to (another collector's http source).
	Endpoint string
	// Gzip compresses each request body (Content-Encoding: gzip).
	Gzip bool
	// RequestTimeout bounds one POST; 0 = 30s.
	RequestTimeout time.Duration
}

// HTTP sends each batch as one POST of a Flume JSON event array
// ([{"headers":{…},"body":"…"}]) — what an http source (this collector's, or Flume's
// JSONHandler) accepts — to chain collectors into tiers (edge agents → a central one →
// Kafka), as Flume's avro sink and source do. A batch is delivered when the endpoint
// answers 2xx (the http source answers once every event is in its channel); anything
// else fails the batch, so the channel take rolls back and is retried: at-least-once
// across the tiers. Bodies that are not UTF-8 go base64 with header
// tagpipe.body_encoding=base64, so no byte is lost.
type HTTP struct {
	name string
	opts HTTPOptions
	cl   *http.Client
}

// NewHTTP checks the options.
func NewHTTP(name string, opts HTTPOptions) (*HTTP, error) {
	u, err := url.Parse(opts.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http sink %s: endpoint %q: want an http:// or https:// URL", name, opts.Endpoint)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	return &HTTP{name: name, opts: opts, cl: &http.Client{Timeout: opts.RequestTimeout}}, nil
}

func (h *HTTP) Name() string { return h.name }

type jsonEvent struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func (h *HTTP) Deliver(ctx context.Context, evs []ingest.Event) error {
	out := make([]jsonEvent, len(evs))
	for i, e := range evs {
		hs := e.Headers.Map()
		if hs == nil {
			hs = map[string]string{}
		}
		if utf8.Valid(e.Body) {
			out[i] = jsonEvent{hs, string(e.Body)}
		} else {
			hs[ingest.HeaderBodyEncoding] = "base64"
			out[i] = jsonEvent{hs, base64.StdEncoding.EncodeToString(e.Body)}
		}
	}
	var body bytes.Buffer
	var w io.Writer = &body
	var zw *gzip.Writer
	if h.opts.Gzip {
		zw = gzip.NewWriter(&body)
		w = zw
	}
	if err := json.NewEncoder(w).Encode(out); err != nil {
		return fmt.Errorf("http sink %s: %w", h.name, err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("http sink %s: %w", h.name, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.opts.Endpoint, &body)
	if err != nil {
		return fmt.Errorf("http sink %s: %w", h.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if zw != nil {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := h.cl.Do(req)
	if err != nil {
		return fmt.Errorf("http sink %s: %w", h.name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		// 503 (the next tier's channel is full) included: the take rolls back and the
		// runner retries it after its backoff.
		return fmt.Errorf("http sink %s: %s answered %s: %s", h.name, h.opts.Endpoint, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Close releases idle connections.
func (h *HTTP) Close() error {
	h.cl.CloseIdleConnections()
	return nil
}
