package kafkasec

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// dialTLS connects to addr and, with SSL or SASL_SSL, completes the TLS handshake,
// bounded by ctx.
func (s *Security) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if t := s.tlsFor(addr); t != nil {
		tc := tls.Client(nc, t)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	return nc, nil
}

// DialFunc is the dial function the client libraries are given (kafka-go's
// Transport.Dial and Dialer.DialFunc, franz-go's kgo.Dialer): TCP, then TLS when the
// protocol has it; the library does SASL itself on the connection. A connection the
// broker closes during SASL reads as an error that says authentication failed, as
// Kafka's SASL_AUTHENTICATION_FAILED does (brokers may just hang up on a bad password).
func (s *Security) DialFunc() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := s.dialTLS(ctx, network, addr)
		if err != nil || !s.cfg.UsesSASL() {
			return nc, err
		}
		return &saslWatch{Conn: nc, cfg: s.cfg}, nil
	}
}

// saslWatch follows the request frames a client writes until its first request that is
// not part of the SASL exchange; a read that fails on a closed connection while the
// last request was SASLHandshake or SASLAuthenticate becomes an AuthError.
type saslWatch struct {
	net.Conn
	cfg    Config
	inSASL atomic.Bool // the last request begun is SASLHandshake or SASLAuthenticate
	passed atomic.Bool // a request after SASL was written: no more watching

	mu   sync.Mutex // Write's frame state
	head [6]byte    // size and api key of the frame begun
	nh   int        // bytes of head seen
	left int64      // bytes of the current frame still to come after head
}

func (c *saslWatch) Write(b []byte) (int, error) {
	if !c.passed.Load() {
		c.mu.Lock()
		c.follow(b)
		c.mu.Unlock()
	}
	return c.Conn.Write(b)
}

// follow reads the frame headers in b, which continues what was written before.
func (c *saslWatch) follow(b []byte) {
	for len(b) > 0 && !c.passed.Load() {
		if c.left > 0 {
			n := min(int64(len(b)), c.left)
			c.left, b = c.left-n, b[n:]
			continue
		}
		n := copy(c.head[c.nh:], b)
		c.nh, b = c.nh+n, b[n:]
		if c.nh < len(c.head) {
			return
		}
		c.nh, c.left = 0, max(int64(binary.BigEndian.Uint32(c.head[:4]))-2, 0)
		switch kmsg.Key(binary.BigEndian.Uint16(c.head[4:])) {
		case kmsg.SASLHandshake, kmsg.SASLAuthenticate:
			c.inSASL.Store(true)
		case kmsg.ApiVersions:
			c.inSASL.Store(false)
		default:
			c.inSASL.Store(false)
			c.passed.Store(true)
		}
	}
}

func (c *saslWatch) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.inSASL.Load() && !c.passed.Load() && isClosed(err) {
		err = AuthError(c.cfg, err)
	}
	return n, err
}
