package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownFlagNamesHelp: a mistyped flag says which command's --help lists the flags,
// for the root and for subcommands at any depth.
func TestUnknownFlagNamesHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "Run 'tagpipe --help' for its flags"},
		{[]string{"sql", "--bogus"}, "Run 'tagpipe sql --help' for its flags"},
		{[]string{"topics", "create", "--partition", "3"}, "Run 'tagpipe topics create --help' for its flags"},
	} {
		out, err := runTagpipeErr(append([]string{"--data-dir", t.TempDir()}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), "unknown flag") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (output %q); want an unknown-flag error with %q", c.args, err, out, c.want)
		}
	}
}

// TestUnknownSubcommandFails: a command group given a word that is none of its
// subcommands fails (exit 1) with a suggestion, as the root does; alone it prints its help.
func TestUnknownSubcommandFails(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topics", "lst"}, "unknown command \"lst\" for \"tagpipe topics\"\n\nDid you mean this?\n\tlist"},
		{[]string{"tags", "audience", "exprt"}, "unknown command \"exprt\" for \"tagpipe tags audience\""},
		{[]string{"config", "show"}, "Run 'tagpipe config --help' for its commands"},
	} {
		out, err := runTagpipeErr(append([]string{"--data-dir", dir}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (output %q); want an error with %q", c.args, err, out, c.want)
		}
	}
	out, err := runTagpipeErr("--data-dir", dir, "tables")
	if err != nil || !strings.Contains(out, "Available Commands:") {
		t.Errorf("tagpipe tables: %v, %q; want its help", err, out)
	}
}

// TestAddrInUseSaysWhichSetting: a server whose address is taken says which setting and
// environment variable give it another one.
func TestAddrInUseSaysWhichSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	dir := t.TempDir()
	for _, c := range []struct {
		yaml, cmd, want string
	}{
		{"admin: {listen: \"\"}\nbroker: {listen: \"" + addr + "\"}\n", "broker", "give broker.listen another address in tagpipe.yaml or with TAGPIPE_BROKER_LISTEN=127.0.0.1:PORT"},
		{"admin: {listen: \"" + addr + "\"}\n", "broker", "give admin.listen another address in tagpipe.yaml or with TAGPIPE_ADMIN_LISTEN=127.0.0.1:PORT"},
	} {
		cfg := filepath.Join(dir, "tagpipe.yaml")
		if err := os.WriteFile(cfg, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runTagpipeErr("--config", cfg, "--data-dir", filepath.Join(dir, "data"), c.cmd)
		if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %q: %v (output %q); want %q", c.cmd, c.yaml, err, out, c.want)
		}
	}
}

// TestVersionFlag: tagpipe --version prints what tagpipe version does.
func TestVersionFlag(t *testing.T) {
	flag, err := runTagpipeErr("--version")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := runTagpipeErr("version")
	if err != nil || flag != cmd || !strings.HasPrefix(flag, "tagpipe ") {
		t.Fatalf("--version printed %q, version %q (%v)", flag, cmd, err)
	}
}
