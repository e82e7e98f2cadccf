package broker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/storage"
)

// conn is one client connection. One goroutine (serve) reads a request, handles it and
// queues the encoded response; a second (writeLoop) writes responses in queue order. A
// request is handled only after the previous one, so pipelined requests are answered in
// the order they were sent (what Kafka guarantees per connection). When nothing is
// queued, serve writes the response itself (Produce, Metadata, and Fetch with its file
// sections): handing it to writeLoop cost a goroutine wake-up per request, on the
// latency path of every produce round trip and of every fetch, which a consumer sends
// one after the other. writeLoop takes the responses that find others still queued.
type conn struct {
	b  *Broker
	l  *listener // the listener it came in on; nil in tests that build a conn
	nc net.Conn  // a *tls.Conn on SSL and SASL_SSL listeners
	// tls: nc is a TLS connection, so record sets go through its writer (no sendfile).
	tls    bool
	rw     io.ReadWriter // nc's bytes: raw system calls where possible (sock_linux.go)
	remote string
	out    chan *outFrame
	// queued counts frames sent to out and not yet written; 0 means out is empty and
	// writeLoop holds nothing unwritten, so serve may write the next frame itself.
	queued   atomic.Int32
	wmu      sync.Mutex      // guards w and writes to nc
	w        *bufio.Writer   // buffered writes of response bytes
	done     chan struct{}   // closed when the connection is going away
	ctx      context.Context // canceled with done: bounds waits in group handlers
	cancel   context.CancelFunc
	once     sync.Once
	clientID string
	// splices are the record sets the handler just answered with (Fetch): the response
	// carries a marker in their place, and frame() swaps each marker for the file
	// section, which the writer sends with sendfile. Only the serve goroutine uses it.
	splices []splice
	// scan checks the batch CRCs of a large Produce request while it is read (see
	// produce_scan.go). Only the serve goroutine uses it.
	scan produceScan
	// unauth: the connection is on a SASL listener and not authenticated yet, so only
	// the SASL exchange is served (17_sasl_handshake.go). sasl is the exchange the
	// handshake chose; saslRaw: after a v0 handshake, frames are raw SASL tokens.
	// Only the serve goroutine uses them.
	unauth   bool
	sasl     saslServer
	saslMech string
	saslRaw  bool
	// principal is "User:<name>" once SASL authenticated, or the client certificate's
	// subject on a TLS listener; empty (User:ANONYMOUS) otherwise. The authorizer's
	// subject (authorize.go), with host, the client's IP address (set on first use).
	principal string
	host      string
	// throttle is how long to mute the connection after this response (quota.go);
	// throttleFirst: before sending it (versions older than KIP-219's). waited is the
	// time the handler spent long-polling, which request quotas do not count. Only the
	// serve goroutine uses them.
	throttle      time.Duration
	throttleFirst bool
	waited        time.Duration
}

// splice is one partition's record set, to be written straight from its segment file.
type splice struct {
	marker []byte
	rr     *storage.ReadResult
}

// outFrame is one response ready to write: encoded bytes and, for Fetch, file sections.
type outFrame struct{ pieces []outPiece }

type outPiece struct {
	b  []byte
	rr *storage.ReadResult
}

func (f *outFrame) size() int {
	n := 0
	for _, p := range f.pieces {
		n += len(p.b)
		if p.rr != nil {
			n += p.rr.Len()
		}
	}
	return n
}

// release closes the file sections of a frame that will not be written.
func (f *outFrame) release() {
	for _, p := range f.pieces {
		if p.rr != nil {
			_ = p.rr.Close()
		}
	}
}

func newConn(b *Broker, l *listener, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	if l.tlsCfg != nil {
		nc = tls.Server(nc, l.tlsCfg)
	}
	c := &conn{b: b, l: l, nc: nc, remote: nc.RemoteAddr().String(), out: make(chan *outFrame, 64),
		done: make(chan struct{}), ctx: ctx, cancel: cancel, tls: l.tlsCfg != nil, unauth: l.sasl()}
	c.rw = nc
	if s := newSockIO(nc); s != nil { // nil for a *tls.Conn: its bytes go through its writer
		c.rw = s
	}
	c.w = bufio.NewWriterSize(c.rw, 64<<10)
	return c
}

func (c *conn) close() {
	c.once.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		close(c.done)
		if tc, ok := c.nc.(*tls.Conn); ok {
			// Without close_notify: tls.Conn.Close would write the alert, and Stop must
			// not wait on a client that does not read.
			_ = tc.NetConn().Close()
			return
		}
		_ = c.nc.Close()
	})
}

// readAheadBytes is the size of a connection's read-ahead buffer (see serve).
const readAheadBytes = 16 << 10

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
	if c.tls {
		if err := c.handshake(); err != nil {
			b.log.Info("closing connection: TLS handshake failed", "remote", c.remote, "listener", c.l.Name, "err", err)
			return
		}
	}
	// The read-ahead buffer is small on purpose: the part of a large request it holds
	// when the request's size is read is copied from it into the frame buffer, and the
	// rest is read straight into the frame buffer. With 64 KiB, a producer's 100 KiB
	// requests (kafka-go's batches) were mostly copied twice. 16 KiB still takes many
	// small pipelined requests (fetches, heartbeats) in one read.
	r := bufio.NewReaderSize(c.rw, readAheadBytes)
	var sizeBuf [4]byte
	var buf []byte
	for {
		if c.throttle > 0 && !c.waitThrottle() { // over a quota: muted
			return
		}
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
		// (Raw SASL tokens after a v0 handshake may be shorter than a request header.)
		if size < 10 && (!c.saslRaw || size < 0) || size > b.opts.MaxRequestBytes {
			b.metrics.malformed.Inc()
			b.log.Warn("closing connection: bad request size", "remote", c.remote, "size", size, "max", b.opts.MaxRequestBytes)
			return
		}
		// Buffers are reused (see frames.go): requests are handled one at a time and
		// decoded without copying, and nothing that outlives the request keeps a
		// reference into it (createTopic/setTopicConfigs clone the strings they keep).
		var frame []byte
		pooled := size > connFrameBytes
		switch {
		case pooled:
			frame = b.frames.get(int(size))
		case int(size) <= cap(buf):
			frame = buf[:size]
		default:
			// Grow by doubling (up to connFrameBytes): a producer's requests grow while
			// its client warms up, and each new largest size allocated and faulted in a
			// fresh buffer (and grew the heap towards the next GC).
			buf = make([]byte, max(int(size), min(2*cap(buf), connFrameBytes)))
			frame = buf[:size]
		}
		var err error
		if pooled {
			err = c.readScanned(r, frame)
		} else {
			_, err = io.ReadFull(r, frame)
		}
		if err != nil {
			if pooled {
				c.scan.reset()
				b.frames.put(frame)
			}
			b.log.Debug("connection read failed mid-frame", "remote", c.remote, "err", err)
			return
		}
		b.metrics.bytesIn.Add(float64(4 + len(frame)))
		resp, err := c.handleFrame(frame)
		if pooled {
			c.scan.reset()
			b.frames.put(frame) // the response is encoded: nothing refers to the frame now
		}
		if err != nil {
			c.hangUp(resp, err)
			return
		}
		if c.throttleFirst && !c.waitThrottle() { // an old version's response waits out its throttle
			resp.release()
			return
		}
		if resp == nil {
			continue // acks=0 produce
		}
		if inlined, err := c.writeInline(resp); inlined {
			if err != nil {
				return
			}
			continue
		}
		c.queued.Add(1)
		select {
		case c.out <- resp:
		case <-c.done:
			resp.release()
			return
		}
	}
}

// hangUp ends a connection whose request failed: a malformed request, or a failed SASL
// exchange, whose answer (resp, when the protocol has one) is written first.
func (c *conn) hangUp(resp *outFrame, err error) {
	if resp != nil {
		// Before authentication every answer is written inline, so nothing is queued
		// and this one is written now.
		if inlined, _ := c.writeInline(resp); !inlined {
			resp.release()
		}
	}
	var ae *authError
	if errors.As(err, &ae) {
		c.b.metrics.authFailures.Inc()
		c.b.log.Info("closing connection: authentication failed", "remote", c.remote, "listener", c.l.Name,
			"mechanism", c.saslMech, "client_id", c.clientID, "err", ae.reason)
		return
	}
	c.b.metrics.malformed.Inc()
	c.b.log.Warn("closing connection", "remote", c.remote, "client_id", c.clientID, "err", err)
}

// readScanned fills frame from r a piece at a time, scanning each piece as it arrives
// (produce_scan.go). It returns an error unless the whole frame was read.
func (c *conn) readScanned(r *bufio.Reader, frame []byte) error {
	c.scan.reset()
	for got := 0; got < len(frame); {
		n, err := r.Read(frame[got:min(got+scanPiece, len(frame))])
		got += n
		if err != nil && got < len(frame) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		c.scan.advance(frame, got)
	}
	return nil
}

// writeInline writes f from the serve goroutine when no earlier response is waiting,
// and releases its file sections. It reports whether it wrote f. (Fetch responses used
// to go through writeLoop so that sending a large one overlapped with reading the next
// request; but consumers send their next fetch only after this one's answer, and a
// response must wait for the one before it anyway, so the overlap saved nothing the
// wake-up did not cost: about 10% of the broker's CPU while consuming.)
func (c *conn) writeInline(f *outFrame) (bool, error) {
	if c.queued.Load() != 0 || !c.wmu.TryLock() {
		return false, nil
	}
	defer c.wmu.Unlock()
	if c.queued.Load() != 0 { // writeLoop took the lock only to finish a frame
		return false, nil
	}
	err := c.writeFrame(c.w, f)
	if err == nil {
		err = c.w.Flush()
	}
	n := f.size()
	f.release()
	if err != nil {
		return true, err
	}
	c.b.metrics.bytesOut.Add(float64(n))
	return true, nil
}

func (c *conn) writeLoop() {
	defer func() {
		// Release file sections of responses that will never be written.
		for {
			select {
			case f := <-c.out:
				f.release()
			default:
				return
			}
		}
	}()
	for {
		select {
		case <-c.done:
			return
		case f := <-c.out:
			c.wmu.Lock()
			err := c.writeFrame(c.w, f)
			f.release()
			// Flush when nothing else is queued: pipelined responses share one write.
			if err == nil && len(c.out) == 0 {
				err = c.w.Flush()
			}
			c.queued.Add(-1)
			c.wmu.Unlock()
			if err != nil {
				c.close()
				return
			}
			c.b.metrics.bytesOut.Add(float64(f.size()))
		}
	}
}

func (c *conn) writeFrame(w *bufio.Writer, f *outFrame) error {
	for _, p := range f.pieces {
		if p.rr == nil {
			if _, err := w.Write(p.b); err != nil {
				return err
			}
			continue
		}
		if c.tls { // through the TLS writer: sendfile would bypass the encryption
			if n, err := p.rr.WriteTo(w); err != nil || n != int64(p.rr.Len()) {
				return fmt.Errorf("cannot send record set: wrote %d of %d bytes: %v", n, p.rr.Len(), err)
			}
			continue
		}
		// Record sets go from the segment file to the socket (sendfile on Linux).
		if err := w.Flush(); err != nil {
			return err
		}
		if n, err := p.rr.WriteTo(c.nc); err != nil || n != int64(p.rr.Len()) {
			return fmt.Errorf("cannot send record set: wrote %d of %d bytes: %v", n, p.rr.Len(), err)
		}
	}
	return nil
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
func (c *conn) handleFrame(frame []byte) (*outFrame, error) {
	if c.saslRaw {
		return c.rawSASLToken(frame)
	}
	var qstart time.Time // request_percentage counts decoding, handling and encoding
	if c.b.quotas.Active() {
		qstart = c.b.quotas.Now()
	}
	h, body, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	if c.unauth && !c.allowedBeforeAuth(h.key) {
		return nil, fmt.Errorf("%w: %s before SASL authentication", errMalformed, kmsg.NameForKey(h.key))
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
			return c.frame(h, unsupportedApiVersions())
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
	// The hot paths (Produce, Fetch, ListOffsets, Metadata) decode without copying: the
	// request aliases the frame buffer, which is reused for the next request, so their
	// handlers clone any string they keep. Everything else (group state, configs) is
	// decoded into copies.
	var err2 error
	if h.key <= 3 {
		err2 = req.(kmsg.UnsafeReadFrom).UnsafeReadFrom(body)
	} else {
		// kmsg's ReadFrom copies strings but not bytes fields, and group state keeps
		// some (protocol metadata, assignments) after the request: a private copy of
		// the body keeps them from aliasing the connection's buffer, which the next
		// request overwrites (go test -race caught DescribeGroups answering with
		// another connection's bytes).
		err2 = req.ReadFrom(bytes.Clone(body))
	}
	if err := err2; err != nil {
		return nil, fmt.Errorf("%w: cannot decode %s v%d: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	start := time.Now()
	c.waited = 0
	resp, err := hd.fn(c, req)
	c.b.metrics.observe(h.key, time.Since(start))
	var qnow time.Time
	if err == nil && !qstart.IsZero() {
		qnow = c.b.quotas.Now()
		resp = c.applyQuotas(h, req, resp, len(frame), qnow.Sub(qstart)-c.waited, qnow)
	}
	if err != nil || resp == nil {
		c.releaseSplices()
		var ae *authError
		if resp != nil && errors.As(err, &ae) { // answered, then the connection is closed
			resp.SetVersion(h.version)
			f, _ := c.frame(h, resp) // no splices: nothing can be missing
			return f, err
		}
		return nil, err
	}
	resp.SetVersion(h.version)
	f, err := c.frame(h, resp)
	if err != nil {
		return nil, err
	}
	if !qnow.IsZero() {
		c.recordEncoding(h, qnow)
	}
	if drop := testHookDropResponse.Load(); drop != nil && (*drop)(h.key) {
		f.release()
		return nil, errors.New("test hook: connection dropped after handling, before responding")
	}
	return f, nil
}

// wait runs f, a call that waits (a fetch's long-poll, a rebalance), and counts its time
// as waiting, not work: request_percentage leaves it out, as Kafka's purgatory holds no
// handler thread.
func (c *conn) wait(f func()) {
	start := c.b.quotas.Now() // the clock request_percentage is measured with
	f()
	c.waited += c.b.quotas.Now().Sub(start)
}

// testHookDropResponse, set by tests only, drops the connection after a request was
// handled and before its response is sent (a lost response forces a client retry).
var testHookDropResponse atomic.Pointer[func(key int16) bool]

func (c *conn) releaseSplices() {
	for _, s := range c.splices {
		_ = s.rr.Close()
	}
	c.splices = c.splices[:0]
}

// frame encodes size, response header (v0; v1 with empty tags for flexible responses
// except ApiVersions, whose response header is always v0) and body. Record sets the
// handler left as splices are cut out of the encoding: each marker and its length prefix
// become the real length and the file section. A marker not in the encoding is a bug in
// a handler: that connection is closed (its reads released), not the broker.
func (c *conn) frame(h requestHeader, resp kmsg.Response) (*outFrame, error) {
	buf := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(buf[4:], uint32(h.corrID))
	if resp.IsFlexible() && resp.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	if len(c.splices) == 0 {
		binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
		return &outFrame{pieces: []outPiece{{b: buf}}}, nil
	}
	f := &outFrame{pieces: make([]outPiece, 0, 3*len(c.splices)+1)}
	pos := 0
	for _, s := range c.splices {
		i := bytes.Index(buf[pos:], s.marker)
		if i < 0 {
			c.releaseSplices()
			c.b.log.Error("BUG: a fetch's record set is missing from its encoded response; closing the connection", "api", h.key)
			return nil, errors.New("fetch splice marker not found in the encoded response")
		}
		i += pos
		var lenBytes []byte
		var prefix int
		if resp.IsFlexible() { // compact bytes: uvarint(len+1); len(marker)+1 fits in one byte
			prefix = 1
			lenBytes = binary.AppendUvarint(nil, uint64(s.rr.Len())+1)
		} else {
			prefix = 4
			lenBytes = binary.BigEndian.AppendUint32(nil, uint32(s.rr.Len()))
		}
		f.pieces = append(f.pieces, outPiece{b: buf[pos : i-prefix]}, outPiece{b: lenBytes}, outPiece{rr: s.rr})
		pos = i + len(s.marker)
	}
	f.pieces = append(f.pieces, outPiece{b: buf[pos:]})
	c.splices = c.splices[:0]
	binary.BigEndian.PutUint32(buf[0:], uint32(f.size()-4))
	return f, nil
}
