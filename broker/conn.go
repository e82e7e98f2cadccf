package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. One goroutine (serve) reads a request, handles it and
// queues the encoded response; a second (writeLoop) writes responses in queue order. A
// request is handled only after the previous one, so pipelined requests are answered in
// the order they were sent (what Kafka guarantees per connection).
type conn struct {
	b        *Broker
	nc       net.Conn
	remote   string
	out      chan []byte
	done     chan struct{} // closed when the connection is going away
	once     sync.Once
	clientID string
}

func newConn(b *Broker, nc net.Conn) *conn {
	return &conn{b: b, nc: nc, remote: nc.RemoteAddr().String(), out: make(chan []byte, 64), done: make(chan struct{})}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}

// requestHeader is the Kafka request header (v1, or v2 with tagged fields for flexible
// requests) in front of every request body.
type requestHeader struct {
	key      int16
	version  int16
	corrID   int32
	clientID *string
}

// errMalformed marks a frame that cannot be parsed; the connection is closed.
var errMalformed = errors.New("malformed request")

func (c *conn) serve() {
	b := c.b
	b.metrics.connections.Inc()
	defer b.metrics.connections.Dec()
	var wwg sync.WaitGroup
	wwg.Add(1)
	go func() {
		defer wwg.Done()
		c.writeLoop()
	}()
	defer func() {
		c.close()
		wwg.Wait()
	}()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if b.opts.IdleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(b.opts.IdleTimeout))
		}
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				b.log.Debug("connection read failed", "remote", c.remote, "err", err)
			}
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		// Refuse before allocating: a bogus or hostile length must not make us reserve memory.
		if size < 10 || size > b.opts.MaxRequestBytes {
			b.metrics.malformed.Inc()
			b.log.Warn("closing connection: bad request size", "remote", c.remote, "size", size, "max", b.opts.MaxRequestBytes)
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			b.log.Debug("connection read failed mid-frame", "remote", c.remote, "err", err)
			return
		}
		b.metrics.bytesIn.Add(float64(4 + len(frame)))
		resp, err := c.handleFrame(frame)
		if err != nil {
			b.metrics.malformed.Inc()
			b.log.Warn("closing connection", "remote", c.remote, "client_id", c.clientID, "err", err)
			return
		}
		if resp == nil {
			continue // acks=0 produce
		}
		select {
		case c.out <- resp:
		case <-c.done:
			return
		}
	}
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		select {
		case <-c.done:
			return
		case buf := <-c.out:
			if _, err := w.Write(buf); err != nil {
				c.close()
				return
			}
			c.b.metrics.bytesOut.Add(float64(len(buf)))
			// Flush when nothing else is queued: pipelined responses share one write.
			if len(c.out) == 0 {
				if err := w.Flush(); err != nil {
					c.close()
					return
				}
			}
		}
	}
}

// parseHeader reads the request header; it returns the header, the body and whether the
// request was a KIP-511 ApiVersions at a version we do not know (answered specially).
func parseHeader(frame []byte) (h requestHeader, body []byte, err error) {
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corrID = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if n >= 0 {
		if int(n) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id length %d beyond frame", errMalformed, n)
		}
		s := string(rest[:n])
		h.clientID = &s
		rest = rest[n:]
	} else if n != -1 {
		return h, nil, fmt.Errorf("%w: client id length %d", errMalformed, n)
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section (KIP-482): uvarint count, then per field a
// uvarint tag, a uvarint size and the bytes.
func skipTags(b []byte) ([]byte, error) {
	num, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad tagged field count", errMalformed)
	}
	b = b[n:]
	for i := uint64(0); i < num; i++ {
		_, n = binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad tag", errMalformed)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: bad tag size", errMalformed)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// handleFrame decodes one request, runs its handler and returns the framed response (nil
// for no response). An error closes the connection.
func (c *conn) handleFrame(frame []byte) ([]byte, error) {
	h, body, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	if h.clientID != nil {
		c.clientID = *h.clientID
	}
	hd, ok := handlers[h.key]
	if !ok {
		return nil, fmt.Errorf("%w: unsupported api key %d", errMalformed, h.key)
	}
	if h.version < hd.min || h.version > hd.max {
		if h.key == 18 {
			// KIP-511: answer an unknown ApiVersions version with a v0 response saying
			// UNSUPPORTED_VERSION and our range, so the client retries at a version we know.
			return c.frame(h, unsupportedApiVersions()), nil
		}
		return nil, fmt.Errorf("%w: %s v%d not supported (want v%d-v%d)", errMalformed, kmsg.NameForKey(h.key), h.version, hd.min, hd.max)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: cannot decode %s v%d: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	start := time.Now()
	resp, err := hd.fn(c, req)
	c.b.metrics.observe(h.key, time.Since(start))
	if err != nil || resp == nil {
		return nil, err
	}
	resp.SetVersion(h.version)
	return c.frame(h, resp), nil
}

// frame encodes size, response header (v0; v1 with empty tags for flexible responses
// except ApiVersions, whose response header is always v0) and body.
func (c *conn) frame(h requestHeader, resp kmsg.Response) []byte {
	buf := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(buf[4:], uint32(h.corrID))
	if resp.IsFlexible() && resp.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
	return buf
}
