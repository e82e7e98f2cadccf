package pgwire

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzFrames sends arbitrary bytes as the messages of a session that started properly
// (and, for inputs starting with 0xff, as the startup packet itself), then half-closes
// the connection. Whatever the bytes, the server must answer or close that connection
// without panicking, and a second session must still be served afterwards.
func FuzzFrames(f *testing.F) {
	msg := func(typ byte, body ...byte) []byte {
		b := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
		return append(b, body...)
	}
	cstr := func(s string) []byte { return append([]byte(s), 0) }
	enc := func(ms ...pgproto3.FrontendMessage) []byte {
		var b []byte
		for _, m := range ms {
			var err error
			if b, err = m.Encode(b); err != nil {
				f.Fatal(err)
			}
		}
		return b
	}
	f.Add(enc(&pgproto3.Query{String: "SELECT 1"}))
	f.Add(enc(&pgproto3.Parse{Name: "s", Query: "SELECT $1::INTEGER"}, &pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("7")}},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Sync{}))
	f.Add(enc(&pgproto3.Parse{Query: "SELECT user_id FROM ads_user_interest_tags WHERE user_id < $1"}, &pgproto3.Bind{ParameterFormatCodes: []int16{1},
		Parameters: [][]byte{{0, 0, 0, 3}}, ResultFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S'}, &pgproto3.Sync{}))
	f.Add(msg('B', 0, 0, 0, 2, 0, 0, 0xff, 0xff))             // Bind with a format count past the body
	f.Add(msg('B', 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff)) // a parameter of length -2
	f.Add(msg('P', cstr("")...))                              // Parse without a query
	f.Add(msg('D', 'X'))                                      // Describe of an unknown kind
	f.Add(msg('d', 1, 2, 3))                                  // CopyData outside COPY
	f.Add(msg('Z'))                                           // a backend message type
	f.Add([]byte{'Q', 0, 0, 0, 2})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	f.Add(append([]byte{0xff}, 0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f))              // SSLRequest as the startup
	f.Add(append([]byte{0xff}, 0, 0, 0, 16, 4, 0xd2, 0x16, 0x2e, 0, 0, 0, 1)) // CancelRequest, short
	f.Add(append([]byte{0xff}, 0, 0, 0, 9, 0, 3, 0, 0, 'u'))                  // startup parameters without terminator

	fx := start(f, nil)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, fx.url("", "sslmode=disable"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { other.Close(ctx) })
	addr := net.JoinHostPort(fx.host, fx.port)
	f.Fuzz(func(t *testing.T, data []byte) {
		var nc net.Conn
		if len(data) > 0 && data[0] == 0xff {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			nc, data = c, data[1:]
		} else {
			fe, c := frontend(t, fx)
			_ = fe
			nc = c
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := nc.Write(data); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("write: %v", err) // the server may close before reading it all
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("the server neither answered to the end nor closed the connection")
				}
				break
			}
		}
		var one int
		if err := other.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("the other session after the input: %v, %d", err, one)
		}
	})
}
