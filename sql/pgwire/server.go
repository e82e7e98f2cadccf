package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Options configure a Server.
type Options struct {
	// Listen is host:port; "127.0.0.1:0" picks a free port (see Addr).
	Listen string
	// User is the user name clients log in as; with no Password any name is accepted.
	User string
	// Password, when set, is required; Auth picks the method.
	Password string
	// Auth is "scram-sha-256" (default) or "md5".
	Auth string
	// TLS, when set, is offered to clients that ask (sslmode=prefer/require).
	TLS *tls.Config
	// RequireTLS refuses clients that do not switch to TLS.
	RequireTLS bool
	// ServerVersion is reported to clients; psql picks its catalog queries by it.
	ServerVersion string
	// StartupTimeout bounds the handshake (startup, TLS, authentication).
	StartupTimeout time.Duration
	// Registry receives connection metrics; nil = none.
	Registry *prometheus.Registry
	Log      *slog.Logger
}

// DefaultOptions listen on 127.0.0.1:5433 as user tagpipe without a password.
func DefaultOptions() Options {
	return Options{Listen: "127.0.0.1:5433", User: "tagpipe", Auth: "scram-sha-256", ServerVersion: "15.0",
		StartupTimeout: 30 * time.Second}
}

// Server accepts PostgreSQL connections; it implements lifecycle.Component.
type Server struct {
	opts   Options
	engine *tsql.Engine
	log    *slog.Logger

	ln      net.Listener
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
	nextPID atomic.Uint32

	mu    sync.Mutex // guards conns
	conns map[uint32]*conn

	versionOnce sync.Once
	version     string

	connsOpen prometheus.Gauge
	authFails prometheus.Counter
}

// New builds a server; it listens on Start.
func New(engine *tsql.Engine, opts Options) *Server {
	d := DefaultOptions()
	if opts.User == "" {
		opts.User = d.User
	}
	if opts.Auth == "" {
		opts.Auth = d.Auth
	}
	if opts.ServerVersion == "" {
		opts.ServerVersion = d.ServerVersion
	}
	if opts.StartupTimeout <= 0 {
		opts.StartupTimeout = d.StartupTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{opts: opts, engine: engine, log: opts.Log, stop: make(chan struct{}), conns: map[uint32]*conn{}}
	s.connsOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_pgwire_connections", Help: "Open PostgreSQL wire connections."})
	s.authFails = prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_pgwire_auth_failures_total", Help: "Refused PostgreSQL logins."})
	if opts.Registry != nil {
		for _, c := range []prometheus.Collector{s.connsOpen, s.authFails} {
			if err := opts.Registry.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					s.log.Warn("cannot register pgwire metric", "err", err)
				}
			}
		}
	}
	return s
}

// Name implements lifecycle.Component.
func (s *Server) Name() string { return "sql-pgwire" }

// Start listens and accepts in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	s.log.Info("postgresql wire listening", "addr", ln.Addr().String(), "tls", s.opts.TLS != nil, "password", s.opts.Password != "")
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("postgresql accept failed", "err", err)
			return
		}
		c := s.newConn(nc)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.connsOpen.Inc()
			defer s.connsOpen.Dec()
			c.serve()
		}()
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	var key [4]byte
	_, _ = rand.Read(key[:])
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, nc: nc, pid: s.nextPID.Add(1), secret: key[:], ctx: ctx, cancelConn: cancel,
		stmts: map[string]*statement{}, portals: map[string]*portal{}}
	s.mu.Lock()
	s.conns[c.pid] = c
	s.mu.Unlock()
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.pid)
	s.mu.Unlock()
}

// cancel interrupts the running query of the connection pid when the secret matches.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	c := s.conns[pid]
	s.mu.Unlock()
	if c == nil || len(secret) != len(c.secret) || binary.BigEndian.Uint32(secret) != binary.BigEndian.Uint32(c.secret) {
		return
	}
	c.cancelQuery()
}

// Stop closes the listener and every connection (running queries are interrupted) and
// waits for them; safe to call twice.
func (s *Server) Stop(ctx context.Context) error {
	s.once.Do(func() {
		close(s.stop)
		if s.ln != nil {
			_ = s.ln.Close()
		}
		s.mu.Lock()
		for _, c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("postgresql connections did not stop: %w", ctx.Err())
	}
}

// duckVersion is DuckDB's version ("v1.5.6"), asked once.
func (s *Server) duckVersion() string {
	s.versionOnce.Do(func() {
		s.version = "unknown"
		var v string
		if err := s.engine.DB().QueryRow("SELECT version()").Scan(&v); err == nil {
			s.version = v
		}
	})
	return s.version
}
