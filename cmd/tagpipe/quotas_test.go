package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestQuotasCommands: tagpipe quotas alter/describe against the built-in broker, as
// kafka-configs.sh --entity-type users/clients/ips: set, list (all, exact, --all),
// remove, and the refusals said clearly.
func TestQuotasCommands(t *testing.T) {
	addr, dir := startTestBroker(t).Addr(), t.TempDir()
	run := func(args ...string) (string, error) {
		var out, errw bytes.Buffer
		root := newRootCmd(&out, &errw)
		root.SetArgs(append([]string{"--data-dir", dir, "quotas"}, append(args, "--bootstrap-server", addr)...))
		err := root.ExecuteContext(context.Background())
		return out.String() + errw.String(), err
	}
	for _, args := range [][]string{
		{"alter", "--user", "alice", "--add", "producer_byte_rate=1048576,request_percentage=50"},
		{"alter", "--user", "alice", "--default-client-id", "--add", "consumer_byte_rate=2048"},
		{"alter", "--default-user", "--add", "producer_byte_rate=4096"},
		{"alter", "--client-id", "app", "--add", "consumer_byte_rate=8192", "--delete", "producer_byte_rate"},
	} {
		if out, err := run(args...); err != nil || !strings.Contains(out, "altered") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := run("alter", "--client-id", "app", "--add", "producer_byte_rate=1", "--validate-only"); err != nil || !strings.Contains(out, "nothing changed") {
		t.Fatalf("validate-only: %v\n%s", err, out)
	}
	out, err := run("describe")
	want := `(?s)^USER\s+CLIENT-ID\s+QUOTAS\n-\s+app\s+consumer_byte_rate=8192\n<default>\s+-\s+producer_byte_rate=4096\n` +
		`alice\s+-\s+producer_byte_rate=1048576,request_percentage=50\nalice\s+<default>\s+consumer_byte_rate=2048\n$`
	if err != nil || !regexp.MustCompile(want).MatchString(out) {
		t.Fatalf("describe: %v\n%s", err, out)
	}
	if out, err := run("describe", "--user", "alice"); err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "request_percentage=50") {
		t.Fatalf("describe --user alice: %v\n%s", err, out)
	}
	if out, err := run("describe", "--user", "alice", "--all"); err != nil || strings.Count(out, "\n") != 3 {
		t.Fatalf("describe --user alice --all: %v\n%s", err, out)
	}
	if out, err := run("describe", "--default-user"); err != nil || !strings.Contains(out, "producer_byte_rate=4096") || strings.Count(out, "\n") != 2 {
		t.Fatalf("describe --default-user: %v\n%s", err, out)
	}
	if out, err := run("alter", "--user", "alice", "--delete", "producer_byte_rate,request_percentage"); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if out, err := run("describe", "--user", "alice", "--all"); err != nil || strings.Count(out, "\n") != 2 || strings.Contains(out, "request_percentage") {
		t.Fatalf("after delete: %v\n%s", err, out)
	}
	// ip quotas: set, listed with an IP column, found by --ip, removed.
	if out, err := run("alter", "--ip", "127.0.0.1", "--add", "connection_creation_rate=5"); err != nil || !strings.Contains(out, "quotas of /ips/127.0.0.1 altered") {
		t.Fatalf("alter --ip: %v\n%s", err, out)
	}
	if out, err := run("alter", "--default-ip", "--add", "connection_creation_rate=50"); err != nil {
		t.Fatalf("alter --default-ip: %v\n%s", err, out)
	}
	out, err = run("describe")
	want = `(?s)^USER\s+CLIENT-ID\s+IP\s+QUOTAS\n-\s+app\s+-\s+consumer_byte_rate=8192\n.*\n-\s+-\s+127\.0\.0\.1\s+connection_creation_rate=5\n-\s+-\s+<default>\s+connection_creation_rate=50\n$`
	if err != nil || !regexp.MustCompile(want).MatchString(out) {
		t.Fatalf("describe with ips: %v\n%s", err, out)
	}
	if out, err := run("describe", "--ip", "127.0.0.1"); err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "connection_creation_rate=5") {
		t.Fatalf("describe --ip: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"alter", "--ip", "127.0.0.1", "--delete", "connection_creation_rate"}, {"alter", "--default-ip", "--delete", "connection_creation_rate"}} {
		if out, err := run(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := run("describe"); err != nil || strings.Contains(out, "IP") {
		t.Fatalf("describe after the ip quotas were removed: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"alter", "--add", "producer_byte_rate=1"}, "name the entity"},
		{[]string{"alter", "--ip", "10.0.0.1", "--user", "a", "--add", "connection_creation_rate=1"}, "stands alone"},
		{[]string{"alter", "--ip", "10.0.0.1", "--default-ip", "--add", "connection_creation_rate=1"}, "not both"},
		{[]string{"alter", "--ip", "10.0.0.1", "--add", "connection_creation_rate=1.5"}, "cannot be a fractional value"},
		{[]string{"alter", "--user", "a", "--default-user", "--add", "producer_byte_rate=1"}, "not both"},
		{[]string{"alter", "--user", "a"}, "nothing to change"},
		{[]string{"alter", "--user", "a", "--add", "producer_byte_rate"}, "KEY=VALUE"},
		{[]string{"alter", "--user", "a", "--add", "producer_byte_rate=fast"}, "not a number"},
		{[]string{"alter", "--user", "a", "--add", "no_such_rate=1"}, "Invalid configuration key no_such_rate"},
		{[]string{"alter", "--user", "a", "--add", "producer_byte_rate=1.5"}, "must be a Long value"},
		{[]string{"alter", "--user", "a", "--add", "controller_mutation_rate=5"}, "not enforced"},
	} {
		if out, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q\n%s", tc.args, err, tc.want, out)
		}
	}
	// The broker's message is printed in place of kerr's generic description of the code,
	// and the code is still there for errors.Is.
	_, err = run("alter", "--user", "a", "--add", "no_such_rate=1")
	if want := "cannot alter the quotas of /users/a: INVALID_REQUEST: Invalid configuration key no_such_rate"; err == nil ||
		!strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "most likely") || !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("unknown key: %v; want %q and errors.Is INVALID_REQUEST", err, want)
	}
}
