// Package syslog is the syslog source: RFC 5424 and RFC 3164 messages over TCP
// (newline-delimited or octet-counted framing, RFC 6587) and UDP. A message becomes an
// event whose body is the MSG part and whose headers carry facility, severity, timestamp
// (epoch ms), host and, for RFC 5424, app_name, procid, msgid and structured_data. A
// message that does not parse is delivered whole with an error header, never dropped.
package syslog

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Message is a parsed syslog message.
type Message struct {
	Facility, Severity int
	Timestamp          time.Time // zero when absent
	Hostname           string
	AppName, ProcID    string
	MsgID              string
	StructuredData     string
	Msg                []byte
	RFC                int // 5424 or 3164
}

// Parse reads one message. now supplies the year for RFC 3164 timestamps, which have none.
func Parse(b []byte, now time.Time) (Message, error) {
	var m Message
	b = bytes.TrimRight(b, "\r\n\x00")
	if len(b) < 3 || b[0] != '<' {
		return m, fmt.Errorf("no <PRI>")
	}
	end := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if end < 2 {
		return m, fmt.Errorf("bad <PRI>")
	}
	pri, err := strconv.Atoi(string(b[1:end]))
	if err != nil || pri > 191 {
		return m, fmt.Errorf("bad <PRI> %q", b[1:end])
	}
	m.Facility, m.Severity = pri/8, pri%8
	rest := b[end+1:]
	if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' && (rest[1] == ' ' || rest[1] >= '0' && rest[1] <= '9') {
		return parse5424(m, rest)
	}
	return parse3164(m, rest, now)
}

func field(b []byte) ([]byte, []byte, bool) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

func nilvalue(b []byte) string {
	if string(b) == "-" {
		return ""
	}
	return string(b)
}

func parse5424(m Message, b []byte) (Message, error) {
	m.RFC = 5424
	ver, b, ok := field(b)
	if !ok || string(ver) != "1" {
		return m, fmt.Errorf("unsupported syslog version %q", ver)
	}
	var ts, host, app, proc, msgid []byte
	for _, p := range []*[]byte{&ts, &host, &app, &proc, &msgid} {
		*p, b, ok = field(b)
		if !ok && p != &msgid {
			return m, fmt.Errorf("RFC 5424 header too short")
		}
	}
	if string(ts) != "-" {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			return m, fmt.Errorf("bad RFC 5424 timestamp %q", ts)
		}
		m.Timestamp = t
	}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = nilvalue(host), nilvalue(app), nilvalue(proc), nilvalue(msgid)
	if len(b) == 0 {
		return m, fmt.Errorf("RFC 5424 message without STRUCTURED-DATA")
	}
	if b[0] == '-' {
		b = b[1:]
	} else if b[0] == '[' {
		// SD-ELEMENTs: [id k="v" …][…]; values may contain escaped \] and \".
		i, depth, esc := 0, 0, false
		for ; i < len(b); i++ {
			c := b[i]
			if esc {
				esc = false
				continue
			}
			switch c {
			case '\\':
				esc = true
			case '[':
				depth++
			case ']':
				depth--
			}
			if depth == 0 && (i+1 == len(b) || b[i+1] != '[') {
				i++
				break
			}
		}
		if depth != 0 {
			return m, fmt.Errorf("unterminated STRUCTURED-DATA")
		}
		m.StructuredData = string(b[:i])
		b = b[i:]
	} else {
		return m, fmt.Errorf("bad STRUCTURED-DATA")
	}
	if len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // BOM
	m.Msg = b
	return m, nil
}

func parse3164(m Message, b []byte, now time.Time) (Message, error) {
	m.RFC = 3164
	// "Mmm dd hh:mm:ss" (dd space-padded), then HOSTNAME, then the message (TAG: …).
	if len(b) >= 16 && b[15] == ' ' {
		t, err := time.ParseInLocation(time.Stamp, string(b[:15]), now.Location())
		if err == nil {
			t = t.AddDate(now.Year(), 0, 0)
			if t.After(now.Add(24 * time.Hour)) { // December logs read in January
				t = t.AddDate(-1, 0, 0)
			}
			m.Timestamp = t
			b = b[16:]
			host, rest, ok := field(b)
			if ok && len(host) > 0 && !bytes.HasSuffix(host, []byte(":")) {
				m.Hostname = string(host)
				b = rest
			}
		}
	}
	if m.Timestamp.IsZero() {
		return m, fmt.Errorf("bad RFC 3164 timestamp")
	}
	// TAG[pid]: is kept in the message, as rsyslog does, and also split out.
	if i := bytes.IndexByte(b, ':'); i > 0 && i < 48 && bytes.IndexByte(b[:i], ' ') < 0 {
		tag := b[:i]
		if j := bytes.IndexByte(tag, '['); j > 0 && tag[len(tag)-1] == ']' {
			m.AppName, m.ProcID = string(tag[:j]), string(tag[j+1:len(tag)-1])
		} else {
			m.AppName = string(tag)
		}
	}
	m.Msg = b
	return m, nil
}
