package syslog

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/internal/chantest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want string // fmt of selected fields
	}{
		{`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8`,
			`5424 4/2 2003-10-11T22:14:15.003Z host=mymachine.example.com app=su proc= msgid=ID47 sd= msg="BOM'su root' failed for lonvick on /dev/pts/8"`},
		{`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.`,
			`5424 20/5 2003-08-24T12:14:15.000003Z host=192.0.2.1 app=myproc proc=8710 msgid= sd= msg="%% It's time to make the do-nuts."`},
		{`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appl\]ication"][examplePriority@32473 class="high"]`,
			`5424 20/5 2003-10-11T22:14:15.003Z host=mymachine.example.com app=evntslog proc= msgid=ID47 sd=[exampleSDID@32473 iut="3" eventSource="Appl\]ication"][examplePriority@32473 class="high"] msg=""`},
		{`<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
			`3164 4/2 2025-10-11T22:14:15Z host=mymachine app=su proc= msgid= sd= msg="su: 'su root' failed for lonvick on /dev/pts/8"`},
		{`<13>Feb  5 17:32:18 10.0.0.99 sshd[4242]: Accepted publickey`,
			`3164 1/5 2026-02-05T17:32:18Z host=10.0.0.99 app=sshd proc=4242 msgid= sd= msg="sshd[4242]: Accepted publickey"`},
	}
	for _, c := range cases {
		m, err := Parse([]byte(c.in), now)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got := fmt.Sprintf("%d %d/%d %s host=%s app=%s proc=%s msgid=%s sd=%s msg=%q", m.RFC, m.Facility, m.Severity,
			m.Timestamp.UTC().Format(time.RFC3339Nano), m.Hostname, m.AppName, m.ProcID, m.MsgID, m.StructuredData, m.Msg)
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "hello", "<999>1 x", "<34>2 2003-10-11T22:14:15Z h a p m - x", "<34>1 notatime h a p m - x", "<34>yesterday something"} {
		if _, err := Parse([]byte(bad), now); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParse: the parser never panics, whatever the bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "<", "<1>", "<34>1 - - - - - -", "<34>1 2003-10-11T22:14:15Z h a p m [x", "<34>Oct 11 22:14:15 h t: m", "<191>1 - - - - - [a b=\"\\]\"] m"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = Parse(b, now) })
}

func startSource(t *testing.T, proto string) (*Source, *channel.Memory) {
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 10000})
	c := ingest.NewMetrics(nil).Component("a", "source", "s", "syslog")
	s, err := New("s", Options{Protocol: proto, Listen: "127.0.0.1:0", MaxBytes: 200, C: c, Now: func() time.Time { return now }},
		&ingest.Processor{Channels: []ingest.Channel{ch}, C: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()); ch.Close() })
	return s, ch
}

// TestSyslogTCP sends newline-framed messages in random chunks, and octet-counted ones on
// another connection; a garbage message is delivered with an error header.
func TestSyslogTCP(t *testing.T) {
	s, ch := startSource(t, "tcp")
	msgs := []string{
		`<34>1 2003-10-11T22:14:15.003Z host1 app 12 ID1 - first`,
		`<13>Feb  5 17:32:18 host2 sshd[1]: second`,
		"this is not syslog",
		`<34>1 2003-10-11T22:14:15.003Z host1 app 12 ID1 - ` + strings.Repeat("x", 300),
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Join(msgs, "\n") + "\n")
	rng := rand.New(rand.NewSource(1))
	for len(data) > 0 {
		n := min(len(data), 1+rng.Intn(20))
		conn.Write(data[:n])
		data = data[n:]
	}
	conn.Close()
	evs := chantest.Take(t, ch, 4)
	if string(evs[0].Body) != "first" || evs[0].Headers.Get("host") != "host1" || evs[0].Headers.Get("severity") != "2" || evs[0].Headers.Get("msgid") != "ID1" {
		t.Fatalf("5424 event = %q %v", evs[0].Body, evs[0].Headers)
	}
	if string(evs[1].Body) != "sshd[1]: second" || evs[1].Headers.Get("app_name") != "sshd" || evs[1].Headers.Get("timestamp") == "" {
		t.Fatalf("3164 event = %q %v", evs[1].Body, evs[1].Headers)
	}
	if string(evs[2].Body) != "this is not syslog" || !strings.HasPrefix(evs[2].Headers.Get("error"), "unparsable syslog") {
		t.Fatalf("garbage event = %q %v", evs[2].Body, evs[2].Headers)
	}
	if !strings.Contains(evs[3].Headers.Get("error"), "line too long") {
		t.Fatalf("long event headers %v", evs[3].Headers)
	}
	// Octet counting (RFC 6587).
	conn, _ = net.Dial("tcp", s.Addr())
	m1 := `<34>1 2003-10-11T22:14:15.003Z h a - - - multi` + "\n" + `line`
	m2 := `<13>Oct 11 22:14:15 h t: two`
	fmt.Fprintf(conn, "%d %s%d %s", len(m1), m1, len(m2), m2)
	conn.Close()
	evs = chantest.Take(t, ch, 2)
	if string(evs[0].Body) != "multi\nline" || string(evs[1].Body) != "t: two" {
		t.Fatalf("octet-counted = %q %q", evs[0].Body, evs[1].Body)
	}
	// A bad octet count closes only that connection.
	conn, _ = net.Dial("tcp", s.Addr())
	conn.Write([]byte("99999999999 x"))
	buf := make([]byte, 1)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("connection with bad framing stayed open")
	}
	conn.Close()
}

func TestSyslogUDP(t *testing.T) {
	s, ch := startSource(t, "udp")
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`<14>1 2026-03-01T11:00:00Z web nginx - - - GET /index.html`))
	conn.Write([]byte("\xff\xfe garbage"))
	evs := chantest.Take(t, ch, 2)
	if string(evs[0].Body) != "GET /index.html" || evs[0].Headers.Get("app_name") != "nginx" {
		t.Fatalf("udp event = %q %v", evs[0].Body, evs[0].Headers)
	}
	if evs[1].Headers.Get("error") == "" {
		t.Fatalf("garbage accepted without error: %v", evs[1].Headers)
	}
}

// TestSyslogPutRefused: messages the channel refuses for a while are put again once it
// takes them (syslog has no acknowledgement to tell the sender), over TCP and UDP; the
// refusals are counted, nothing is lost. Messages still unput when the source stops are
// counted as lost.
func TestSyslogPutRefused(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			g := &chantest.Gate{Channel: channel.NewMemory("m", channel.MemoryOptions{Capacity: 100})}
			c := ingest.NewMetrics(nil).Component("a", "source", "s", "syslog")
			s, err := New("s", Options{Protocol: proto, Listen: "127.0.0.1:0", C: c, Now: func() time.Time { return now }},
				&ingest.Processor{Channels: []ingest.Channel{g}, C: c})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			defer s.Stop(context.Background())
			conn, err := net.Dial(proto, s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			send := func(msg string) {
				if proto == "tcp" {
					msg += "\n"
				}
				if _, err := conn.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
			}
			send(`<14>1 2026-03-01T11:00:00Z web app - - - one`)
			for deadline := time.Now().Add(10 * time.Second); c.Get("put_failures") < 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("put_failures %d", c.Get("put_failures"))
				}
			}
			g.Open.Store(true)
			send(`<14>1 2026-03-01T11:00:00Z web app - - - two`)
			evs := chantest.Take(t, g, 2)
			if string(evs[0].Body) != "one" || string(evs[1].Body) != "two" {
				t.Fatalf("got %q %q", evs[0].Body, evs[1].Body)
			}
			if c.Get("lost") != 0 {
				t.Fatalf("lost %d", c.Get("lost"))
			}
			// Refused again and stopped: counted as lost.
			g.Open.Store(false)
			failures := c.Get("put_failures")
			send(`<14>1 2026-03-01T11:00:00Z web app - - - three`)
			for deadline := time.Now().Add(10 * time.Second); c.Get("put_failures") == failures; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("third message not tried")
				}
			}
			s.Stop(context.Background())
			if c.Get("lost") != 1 {
				t.Fatalf("lost %d after stop, want 1", c.Get("lost"))
			}
		})
	}
}
