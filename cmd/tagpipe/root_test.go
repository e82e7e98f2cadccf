package main

import (
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
		{[]string{"--bogus"}, "Run 'tagpipe --help' for its flags."},
		{[]string{"sql", "--bogus"}, "Run 'tagpipe sql --help' for its flags."},
		{[]string{"topics", "create", "--partition", "3"}, "Run 'tagpipe topics create --help' for its flags."},
	} {
		out, err := runTagpipeErr(append([]string{"--data-dir", t.TempDir()}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), "unknown flag") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (output %q); want an unknown-flag error with %q", c.args, err, out, c.want)
		}
	}
}
