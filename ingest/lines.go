package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
	"unsafe"
)

// LineReader splits a byte stream into lines for the line-oriented sources. A line ends at
// "\n"; a "\r" before it is dropped too (CRLF files deliver the same lines as LF files).
// Lines longer than Max are cut at Max bytes and the rest of the line is skipped; the
// event carries an error header saying so. An unterminated tail at EOF is held (see
// Pending) so a tailing reader can wait for the rest of the line.
type LineReader struct {
	r       *bufio.Reader
	max     int
	partial []byte // bytes of the current line read so far (up to max)
	plen    int64  // full length of the current line so far, including dropped bytes
	prev    byte   // the byte before the last one of the current line (CR detection)
	last    byte
}

// NewLineReader reads lines of at most max bytes (max <= 0: 1 MiB).
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = 1 << 20
	}
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Reset switches to another reader and forgets any partial line.
func (l *LineReader) Reset(r io.Reader) {
	l.r.Reset(r)
	l.partial = l.partial[:0]
	l.plen = 0
	l.prev, l.last = 0, 0
}

// Line is one line read.
type Line struct {
	// Text is the line without its terminator; only valid until the next call.
	Text []byte
	// N is the number of input bytes the line took, terminator included.
	N int64
	// Truncated is set when the line was longer than the maximum.
	Truncated bool
	// Full is the original length without terminator (differs from len(Text) when truncated).
	Full int64
}

// Next returns the next complete line. At the end of input it returns io.EOF and keeps an
// unterminated tail, which Pending reports and a later Next continues (when the
// underlying reader has grown) or Flush hands out.
func (l *LineReader) Next() (Line, error) {
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(chunk) > 0 {
			l.plen += int64(len(chunk))
			if len(chunk) >= 2 {
				l.prev = chunk[len(chunk)-2]
			} else if err == nil {
				l.prev = l.last
			}
			l.last = chunk[len(chunk)-1]
			if room := l.max + 2 - len(l.partial); room > 0 { // +2: room for a CRLF
				c := chunk
				if len(c) > room {
					c = c[:room]
				}
				l.partial = append(l.partial, c...)
			}
		}
		if err == nil {
			return l.finish(true), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return Line{}, err
	}
}

// Buffered is the number of bytes read from the input and not yet returned as lines;
// socket sources use it to batch the lines that already arrived.
func (l *LineReader) Buffered() int { return l.r.Buffered() }

// Pending is the number of bytes of an unterminated line held back.
func (l *LineReader) Pending() int64 { return l.plen }

// Flush returns the held unterminated tail as a line (for end of file, or a tail that
// stayed idle too long); ok is false when nothing is held.
func (l *LineReader) Flush() (Line, bool) {
	if l.plen == 0 {
		return Line{}, false
	}
	return l.finish(false), true
}

func (l *LineReader) finish(terminated bool) Line {
	n, full := l.plen, l.plen
	if terminated {
		full-- // "\n"
		if full > 0 && l.prev == '\r' {
			full--
		}
	}
	text := l.partial
	if int64(len(text)) > full {
		text = text[:full]
	}
	trunc := full > int64(l.max)
	if len(text) > l.max {
		text = text[:l.max]
	}
	l.partial = l.partial[:0]
	l.plen = 0
	l.prev, l.last = 0, 0
	return Line{Text: text, N: n, Truncated: trunc, Full: full}
}

// LineEvent turns a line into an event, copying the text, and marks bad input with the
// error header: over-long, binary (NUL bytes) or invalid UTF-8. The bytes are kept as
// they were, so nothing is lost.
func LineEvent(ln Line) Event { return lineEvent(bytes.Clone(ln.Text), ln) }

// Slab hands out copies of lines, room for their headers and small strings from shared
// chunks, so a source makes one allocation per chunk instead of several per line. A
// chunk lives as long as any event that points into it; its bytes are never written
// twice, so strings made from them stay immutable.
type Slab struct {
	buf  []byte
	hdrs Headers
}

// slabHeaders is the header room each event gets from the slab: enough for a line
// source's own headers (event_id, file, basename, error) plus an interceptor's key or
// two before SetHeader has to allocate.
const slabHeaders = 4

// LineEvent is the package LineEvent with the body copied into the slab.
func (s *Slab) LineEvent(ln Line) Event {
	n := len(ln.Text)
	if n > 4<<10 {
		ev := LineEvent(ln)
		if ev.Headers == nil {
			ev.Headers = s.headers()
		}
		return ev
	}
	s.room(n)
	start := len(s.buf)
	s.buf = append(s.buf, ln.Text...)
	ev := Event{Body: s.buf[start:len(s.buf):len(s.buf)], Headers: s.headers()}
	if reason := Check(ln); reason != "" {
		ev.SetHeader(HeaderError, reason)
	}
	return ev
}

// headers returns an empty header list with room for slabHeaders; appending past that
// reallocates without touching the neighbours' room (the capacity is capped).
func (s *Slab) headers() Headers {
	if cap(s.hdrs)-len(s.hdrs) < slabHeaders {
		s.hdrs = make(Headers, 0, 256*slabHeaders)
	}
	n := len(s.hdrs)
	s.hdrs = s.hdrs[:n+slabHeaders]
	return s.hdrs[n : n : n+slabHeaders]
}

// String returns b as a string held in the slab (for ids built in a scratch buffer).
func (s *Slab) String(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 1<<10 {
		return string(b)
	}
	s.room(len(b))
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return unsafe.String(&s.buf[start], len(b))
}

func (s *Slab) room(n int) {
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]byte, 0, 64<<10)
	}
}

func lineEvent(body []byte, ln Line) Event {
	ev := Event{Body: body}
	if ev.Body == nil {
		ev.Body = []byte{}
	}
	if reason := Check(ln); reason != "" {
		ev.SetHeader(HeaderError, reason)
	}
	return ev
}

// Check says what is wrong with a line, or "" when it is fine.
func Check(ln Line) string {
	switch {
	case ln.Truncated:
		return fmt.Sprintf("line too long: %d bytes, cut at %d", ln.Full, len(ln.Text))
	case bytes.IndexByte(ln.Text, 0) >= 0:
		return "binary data"
	case !utf8.Valid(ln.Text):
		return "invalid utf-8"
	}
	return ""
}
