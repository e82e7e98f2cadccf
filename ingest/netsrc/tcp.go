package netsrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/tagpipe/tagpipe/ingest"
)

// TCPOptions configure a TCP source.
type TCPOptions struct {
	// Listen is host:port; port 0 picks one (see Addr).
	Listen string
	// MaxLineBytes cuts longer lines (with an error header); 0 = 512 (Flume's netcat).
	MaxLineBytes int
	// Ack writes "OK\n" for every line once it is in the channel (Flume's
	// ack-every-event), or "FAILED: reason\n" when it could not be put.
	Ack bool
	// BatchSize bounds the lines of one put (lines that already arrived are batched).
	BatchSize int
	// MaxConns bounds concurrent connections; 0 = 1024.
	MaxConns int
	// PeerHeader, when set, names a header that gets the client's address.
	PeerHeader string
	Log        *slog.Logger
	C          *ingest.Counters
}

// TCP is a netcat-style line source.
type TCP struct {
	name string
	opts TCPOptions
	out  *ingest.Processor
	ln   net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	conns  ingest.Conns
	once   sync.Once
}

// NewTCP checks options; Start listens.
func NewTCP(name string, opts TCPOptions, out *ingest.Processor) (*TCP, error) {
	if opts.Listen == "" {
		return nil, fmt.Errorf("tcp source %s: no listen address", name)
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 512
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1024
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &TCP{name: name, opts: opts, out: out}, nil
}

func (s *TCP) Name() string { return s.name }

// Addr is the bound address once started.
func (s *TCP) Addr() string { return s.ln.Addr().String() }

func (s *TCP) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("tcp source %s: cannot listen on %s: %w", s.name, s.opts.Listen, err)
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.conns.Go(s.accept)
	s.opts.Log.Info("tcp source listening", "source", s.name, "addr", ln.Addr().String())
	return nil
}

func (s *TCP) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.opts.Log.Error("tcp source accept failed", "source", s.name, "err", err)
			}
			return
		}
		if !s.conns.Serve(c, s.opts.MaxConns, s.serve) {
			s.opts.C.Add("conns_refused", 1)
		}
	}
}

func (s *TCP) serve(c net.Conn) {
	s.opts.C.Add("connections", 1)
	peer := c.RemoteAddr().String()
	lr := ingest.NewLineReader(c, s.opts.MaxLineBytes)
	w := bufio.NewWriter(c)
	batch := make([]ingest.Event, 0, s.opts.BatchSize)
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		err := s.out.Put(s.ctx, batch)
		if s.opts.Ack {
			for range batch {
				if err != nil {
					fmt.Fprintf(w, "FAILED: %v\n", err)
				} else {
					w.WriteString("OK\n")
				}
			}
			if w.Flush() != nil {
				return false
			}
		}
		batch = batch[:0]
		return err == nil
	}
	for {
		ln, err := lr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if last, ok := lr.Flush(); ok {
					batch = append(batch, s.event(last, peer))
				}
			}
			flush()
			return
		}
		batch = append(batch, s.event(ln, peer))
		if len(batch) >= s.opts.BatchSize || lr.Buffered() == 0 {
			if !flush() {
				return
			}
		}
	}
}

func (s *TCP) event(ln ingest.Line, peer string) ingest.Event {
	ev := ingest.LineEvent(ln)
	if s.opts.PeerHeader != "" {
		ev.SetHeader(s.opts.PeerHeader, peer)
	}
	return ev
}

// Stop closes the listener and every connection; lines already read are put unless the
// put is still waiting for room. Safe twice.
func (s *TCP) Stop(ctx context.Context) error {
	s.once.Do(func() {
		if s.ln == nil {
			return
		}
		s.cancel()
		s.ln.Close()
		s.conns.CloseAll()
	})
	return s.conns.Wait(ctx)
}
