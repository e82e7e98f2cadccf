package syslog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Options configure a Source.
type Options struct {
	// Protocol is tcp or udp.
	Protocol string
	// Listen is host:port; port 0 picks one (see Addr).
	Listen string
	// MaxBytes bounds one message (longer ones are cut, with an error header); 0 = 64 KiB.
	MaxBytes int
	// KeepFields keeps the whole message (header included) as the body.
	KeepFields bool
	Log        *slog.Logger
	C          *ingest.Counters
	Now        func() time.Time
}

// Source is a syslog source.
type Source struct {
	name string
	opts Options
	out  *ingest.Processor
	ln   net.Listener
	pc   net.PacketConn

	ctx    context.Context
	cancel context.CancelFunc
	conns  ingest.Conns
	once   sync.Once
}

// New checks options; Start listens.
func New(name string, opts Options, out *ingest.Processor) (*Source, error) {
	if opts.Protocol != "tcp" && opts.Protocol != "udp" {
		return nil, fmt.Errorf("syslog source %s: protocol must be tcp or udp, got %q", name, opts.Protocol)
	}
	if opts.Listen == "" {
		return nil, fmt.Errorf("syslog source %s: no listen address", name)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 10
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Source{name: name, opts: opts, out: out}, nil
}

func (s *Source) Name() string { return s.name }

// Addr is the bound address once started.
func (s *Source) Addr() string {
	if s.pc != nil {
		return s.pc.LocalAddr().String()
	}
	return s.ln.Addr().String()
}

func (s *Source) Start(context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.opts.Protocol == "udp" {
		pc, err := net.ListenPacket("udp", s.opts.Listen)
		if err != nil {
			return fmt.Errorf("syslog source %s: cannot listen on udp %s: %w", s.name, s.opts.Listen, err)
		}
		s.pc = pc
		s.conns.Go(s.serveUDP)
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("syslog source %s: cannot listen on tcp %s: %w", s.name, s.opts.Listen, err)
	}
	s.ln = ln
	s.conns.Go(s.accept)
	return nil
}

// Event turns one raw message into an event.
func (s *Source) Event(raw []byte) ingest.Event {
	truncated := false
	if len(raw) > s.opts.MaxBytes {
		raw, truncated = raw[:s.opts.MaxBytes], true
	}
	m, err := Parse(raw, s.opts.Now())
	ev := ingest.Event{Headers: make(ingest.Headers, 0, 8)}
	if err != nil {
		ev.Body = append([]byte(nil), raw...)
		ev.SetHeader(ingest.HeaderError, "unparsable syslog: "+err.Error())
		s.opts.C.Add("unparsable", 1)
		return ev
	}
	if s.opts.KeepFields {
		ev.Body = append([]byte(nil), raw...)
	} else {
		ev.Body = append([]byte(nil), m.Msg...)
	}
	ev.SetHeader("facility", strconv.Itoa(m.Facility))
	ev.SetHeader("severity", strconv.Itoa(m.Severity))
	if !m.Timestamp.IsZero() {
		ev.SetHeader("timestamp", strconv.FormatInt(m.Timestamp.UnixMilli(), 10))
	}
	for _, h := range [...]ingest.Header{{Key: "host", Value: m.Hostname}, {Key: "app_name", Value: m.AppName},
		{Key: "procid", Value: m.ProcID}, {Key: "msgid", Value: m.MsgID}, {Key: "structured_data", Value: m.StructuredData}} {
		if h.Value != "" {
			ev.SetHeader(h.Key, h.Value)
		}
	}
	if truncated {
		ev.SetHeader(ingest.HeaderError, fmt.Sprintf("message longer than %d bytes, cut", s.opts.MaxBytes))
	} else if reason := ingest.Check(ingest.Line{Text: ev.Body}); reason != "" {
		ev.SetHeader(ingest.HeaderError, reason)
	}
	return ev
}

func (s *Source) serveUDP() {
	buf := make([]byte, 65536)
	for {
		n, _, err := s.pc.ReadFrom(buf)
		if err != nil {
			if s.ctx.Err() == nil {
				s.opts.Log.Error("syslog udp read failed", "source", s.name, "err", err)
			}
			return
		}
		if !s.put([]ingest.Event{s.Event(buf[:n])}, "udp") {
			return
		}
	}
}

func (s *Source) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Serve(c, 0, s.serveTCP)
	}
}

// serveTCP reads frames: octet-counted ("LEN SP MSG", RFC 6587) when the connection's
// first byte is a digit, else newline-delimited. A bad length closes the connection (a
// framing error cannot be resynchronised).
func (s *Source) serveTCP(c net.Conn) {
	var batch []ingest.Event
	peer := c.RemoteAddr().String()
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		ok := s.put(batch, peer)
		batch = batch[:0]
		return ok
	}
	defer flush()
	r := bufio.NewReaderSize(c, 64<<10)
	first, err := r.Peek(1)
	if err != nil {
		return
	}
	if first[0] >= '1' && first[0] <= '9' {
		for {
			lenText, err := r.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(lenText[:len(lenText)-1])
			if err != nil || n <= 0 || n > 1<<20 {
				s.opts.C.Add("framing_errors", 1)
				s.opts.Log.Warn("syslog bad octet count, closing connection", "source", s.name, "peer", c.RemoteAddr().String(), "len", lenText)
				return
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return
			}
			batch = append(batch, s.Event(msg))
			if len(batch) >= 100 || r.Buffered() == 0 {
				if !flush() {
					return
				}
			}
		}
	}
	lr := ingest.NewLineReader(r, s.opts.MaxBytes)
	for {
		ln, err := lr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if last, ok := lr.Flush(); ok {
					batch = append(batch, s.Event(last.Text))
				}
			}
			return
		}
		ev := s.Event(ln.Text)
		if ln.Truncated {
			ev.SetHeader(ingest.HeaderError, ingest.Check(ln))
		}
		batch = append(batch, ev)
		if len(batch) >= 100 || lr.Buffered() == 0 {
			if !flush() {
				return
			}
		}
	}
}

// put puts a batch, waiting for room and retrying a refused put (counted as
// put_failures): syslog has no acknowledgement to make the sender repeat it, so over TCP
// the sender waits meanwhile, and over UDP the socket's buffer holds what it can. Only a
// stop or a closed channel ends the wait; the batch is then counted as lost and false
// returned.
func (s *Source) put(evs []ingest.Event, peer string) bool {
	if err := s.out.PutRetrying(s.ctx, evs, s.opts.Log, "source", s.name, "peer", peer); err != nil {
		s.opts.C.Add("lost", int64(len(evs)))
		s.opts.Log.Warn("syslog messages lost: the source stopped or its channel closed before they were put",
			"source", s.name, "peer", peer, "messages", len(evs), "err", err)
		return false
	}
	return true
}

// Stop closes listeners and connections; safe twice.
func (s *Source) Stop(ctx context.Context) error {
	s.once.Do(func() {
		if s.cancel == nil {
			return
		}
		s.cancel()
		if s.ln != nil {
			s.ln.Close()
		}
		if s.pc != nil {
			s.pc.Close()
		}
		s.conns.CloseAll()
	})
	return s.conns.Wait(ctx)
}
