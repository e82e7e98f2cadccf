// Command tagpipe is the one binary of the tagpipe platform: broker, collector, streaming,
// scheduler, tag jobs and SQL, each as a subcommand, or all of them with `tagpipe up`.
//
// This package only parses flags and wires rooms together; each subcommand lives in a
// file of its own and registers itself with register().
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tagpipe:", err)
		os.Exit(1)
	}
}
