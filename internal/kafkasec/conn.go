package kafkasec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxFrame bounds a response frame read by Conn.
const maxFrame = 64 << 20

// Conn is one broker connection for requests tagpipe encodes itself with kmsg, with
// TLS and SASL done as Security says. It is not safe for concurrent use.
type Conn struct {
	net.Conn
	format *kmsg.RequestFormatter
	corr   int32
	buf    []byte
	// bufs, when set (UseBuffers), lends the response buffers; resp is the last
	// response's, until Release hands it back.
	bufs *ResponseBuffers
	resp []byte
}

// UseBuffers makes c read responses into buffers of p, each handed back by the next
// RoundTrip (or Release) for a later response to reuse; a closed Conn's last one is
// left to the GC (Close stays safe to call while a RoundTrip runs). The byte fields of a
// response point into its buffer (kmsg decodes them in place: Fetch's RecordBatches,
// SASL bytes), so with buffers they are valid only until then: a caller copies what it
// keeps.
func (c *Conn) UseBuffers(p *ResponseBuffers) { c.bufs = p }

// Release hands the last response's buffer back to the buffers (UseBuffers): the
// caller is done with the response.
func (c *Conn) Release() {
	if c.resp != nil {
		c.bufs.put(c.resp)
		c.resp = nil
	}
}

// Dial connects to addr: TCP, then the TLS handshake (SSL, SASL_SSL), then SASL
// (SASLHandshake v1 and SASLAuthenticate v1 with franz-go's mechanism), all bounded by
// ctx. A nil s dials PLAINTEXT.
func (s *Security) Dial(ctx context.Context, addr, clientID string) (*Conn, error) {
	nc, err := s.dialTLS(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: nc, format: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
	if s != nil && s.cfg.UsesSASL() {
		if err := c.authenticate(ctx, s.cfg, addr); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// authenticate runs the SASL exchange as franz-go's client does (KIP-152).
func (c *Conn) authenticate(ctx context.Context, cfg Config, addr string) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = cfg.SASLMechanism
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.RoundTrip(ctx, hs, hsResp); err != nil {
		return err
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return fmt.Errorf("SASL handshake for %s: %w (the broker offers %v)", cfg.SASLMechanism, err, hsResp.SupportedMechanisms)
	}
	session, write, err := franzSASL(cfg).Authenticate(ctx, addr)
	if err != nil {
		return err
	}
	for done := false; !done || len(write) > 0; {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 1
		req.SASLAuthBytes = write
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.RoundTrip(ctx, req, resp); err != nil {
			return AuthError(cfg, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			if resp.ErrorMessage != nil {
				err = fmt.Errorf("%w: %s", err, *resp.ErrorMessage)
			}
			return AuthError(cfg, err)
		}
		write = nil
		if !done {
			if done, write, err = session.Challenge(resp.SASLAuthBytes); err != nil {
				return AuthError(cfg, err)
			}
		}
	}
	return nil
}

// AuthError says that SASL authentication failed, and how, around err. Brokers answer
// a bad username or password with SASL_AUTHENTICATION_FAILED or by closing the
// connection; the closed connection is told in words, not wrapped, so the libraries do
// not take it for a transient network error and retry.
func AuthError(cfg Config, err error) error {
	who := fmt.Sprintf("%s as %q", cfg.Mechanism(), cfg.SASLUsername)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("SASL authentication failed (%s: wrong username or password?): %w", who, err)
	case isClosed(err):
		return fmt.Errorf("SASL authentication failed (%s: wrong username, password or mechanism?): the broker closed the connection (%v)", who, err)
	}
	return fmt.Errorf("SASL authentication (%s): %w", who, err)
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET)
}

// RoundTrip sends req and decodes the answer into resp, bounded by ctx (its deadline,
// or its end).
func (c *Conn) RoundTrip(ctx context.Context, req kmsg.Request, resp kmsg.Response) error {
	c.Release() // the caller is done with the last response
	nc := c.Conn
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.corr++
	c.buf = c.format.AppendRequest(c.buf[:0], req, c.corr)
	if _, err := nc.Write(c.buf); err != nil {
		return fmt.Errorf("cannot send %s request: %w", kmsg.NameForKey(req.Key()), err)
	}
	var head [8]byte // size, correlation id
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		return fmt.Errorf("cannot read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 4 || size > maxFrame {
		return fmt.Errorf("%s response of %d bytes", kmsg.NameForKey(req.Key()), size)
	}
	if corr := int32(binary.BigEndian.Uint32(head[4:])); corr != c.corr {
		return fmt.Errorf("%s response has correlation id %d, want %d", kmsg.NameForKey(req.Key()), corr, c.corr)
	}
	var body []byte
	if c.bufs != nil {
		body = c.bufs.get(int(size - 4))
		c.resp = body
	} else {
		body = make([]byte, size-4)
	}
	if _, err := io.ReadFull(nc, body); err != nil {
		return fmt.Errorf("cannot read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	resp.SetVersion(req.GetVersion())
	// A flexible response header ends with tagged fields, except ApiVersions' (KIP-511:
	// a client must read it before it knows the broker's versions).
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return fmt.Errorf("cannot decode %s response header", kmsg.NameForKey(req.Key()))
		}
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("cannot decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return nil
}
