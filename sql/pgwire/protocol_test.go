package pgwire

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// frontend is a raw protocol client for what pgx does not send (row-limited Execute,
// malformed frames).
func frontend(t *testing.T, f *fixture) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", net.JoinHostPort(f.host, f.port))
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "tagpipe"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return fe, nc
		}
	}
}

// until collects messages up to and including the next ReadyForQuery.
func until(t *testing.T, fe *pgproto3.Frontend) []string {
	t.Helper()
	var kinds []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			kinds = append(kinds, "D:"+string(m.Values[0]))
		case *pgproto3.CommandComplete:
			kinds = append(kinds, "C:"+string(m.CommandTag))
		case *pgproto3.PortalSuspended:
			kinds = append(kinds, "s")
		case *pgproto3.ErrorResponse:
			kinds = append(kinds, "E:"+m.Code)
		case *pgproto3.ReadyForQuery:
			return append(kinds, "Z")
		default:
			kinds = append(kinds, "?")
		}
	}
}

func TestExecuteWithRowLimitSuspendsPortal(t *testing.T) {
	f := start(t, nil)
	fe, nc := frontend(t, f)
	defer nc.Close()
	fe.Send(&pgproto3.Parse{Query: "SELECT user_id::VARCHAR FROM ads_user_interest_tags WHERE user_id < $1 ORDER BY user_id"})
	fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte("5")}})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	got := until(t, fe)
	want := []string{"?", "?", "D:0", "D:1", "s", "D:2", "D:3", "s", "D:4", "C:SELECT 5", "Z"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// An error in the middle of a batch skips the rest until Sync, then the session goes on.
	fe.Send(&pgproto3.Parse{Name: "bad", Query: "SELECT nosuch FROM ads_user_interest_tags"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "bad"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Send(&pgproto3.Query{String: "SELECT 'alive'"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := until(t, fe); len(got) != 2 || got[0] != "E:42703" {
		t.Fatalf("failed batch: %v", got)
	}
	if got := until(t, fe); len(got) != 4 || got[1] != "D:alive" {
		t.Fatalf("after the failed batch: %v", got)
	}
}

func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, f.url("", "sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	for _, garbage := range [][]byte{
		{0, 0, 0, 3},                   // startup length below the minimum
		{0, 0, 0, 8, 1, 2, 3, 4},       // unknown protocol version
		{0xff, 0xff, 0xff, 0xff, 0, 0}, // absurd length
	} {
		nc, err := net.Dial("tcp", net.JoinHostPort(f.host, f.port))
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(garbage); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		for {
			if _, err := nc.Read(buf); err != nil {
				break // the server closed it
			}
		}
		nc.Close()
	}
	// After startup: a message whose length is shorter than its header.
	fe, nc := frontend(t, f)
	_ = fe
	if _, err := nc.Write([]byte{'Q', 0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for {
		if _, err := nc.Read(buf); err != nil {
			break
		}
	}
	nc.Close()
	var one int
	if err := other.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the other connection broke: %v", err)
	}
}

// TestBindFormatCodesMismatch: a Bind whose parameter format codes are neither none, one,
// nor one per parameter is refused as PostgreSQL does (08P01), and the session goes on.
// It used to index past the codes: a panic that took down the whole process.
func TestBindFormatCodesMismatch(t *testing.T) {
	f := start(t, nil)
	fe, nc := frontend(t, f)
	defer nc.Close()
	fe.Send(&pgproto3.Parse{Query: "SELECT $1::INTEGER + $2::INTEGER + $3::INTEGER"})
	fe.Send(&pgproto3.Bind{ParameterFormatCodes: []int16{0, 0}, Parameters: [][]byte{[]byte("1"), []byte("2"), []byte("3")}})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Send(&pgproto3.Parse{Query: "SELECT ($1::INTEGER + $2::INTEGER)::VARCHAR"})
	fe.Send(&pgproto3.Bind{ParameterFormatCodes: []int16{0, 0}, Parameters: [][]byte{[]byte("1"), []byte("2")}})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := until(t, fe); len(got) != 3 || got[1] != "E:08P01" {
		t.Fatalf("mismatched format codes: %v, want parse complete, 08P01, ready", got)
	}
	if got := until(t, fe); len(got) != 5 || got[2] != "D:3" {
		t.Fatalf("after the refused bind: %v", got)
	}
}
