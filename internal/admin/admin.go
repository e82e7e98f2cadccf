// Package admin is the process's admin HTTP listener: /healthz, /readyz and Prometheus
// /metrics, plus whatever rooms mount on it (the web console, /v1/query). It listens on
// 127.0.0.1 by default.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server.
type Options struct {
	// Listen is host:port; ":0" picks a free port (see Addr).
	Listen string
	// Registry is scraped by /metrics; nil means a new registry with the Go and process
	// collectors.
	Registry *prometheus.Registry
	// Ready reports readiness for /readyz; nil means always ready once listening.
	Ready func() bool
	Log   *slog.Logger
}

// NewRegistry returns a registry with the Go runtime and process collectors, which every
// tagpipe process exports.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Server is the admin listener. Mount handlers with Handle before Start.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// New builds a server; it does not listen until Start.
func New(opts Options) *Server {
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready != nil && !opts.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	return s
}

// Handle mounts a handler (pattern syntax of net/http.ServeMux).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Registry is the registry /metrics serves; rooms register their collectors here.
func (s *Server) Registry() *prometheus.Registry { return s.opts.Registry }

// Name implements lifecycle.Component.
func (s *Server) Name() string { return "admin-http" }

// Start listens and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Error("admin listener stopped", "err", err)
		}
	}()
	s.opts.Log.Info("admin listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the bound address (useful with ":0").
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop shuts the listener down gracefully; safe to call twice or without Start.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if s.srv == nil {
			return
		}
		err = s.srv.Shutdown(ctx)
		<-s.done
	})
	return err
}
