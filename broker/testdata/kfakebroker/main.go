// Command kfakebroker runs franz-go's kfake as a single-broker child process, so the
// broker benchmarks can measure its CPU and peak RSS the same way as `tagpipe broker`'s.
// It lives under testdata so `go build ./...` skips it; the benchmark builds it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	dataDir := flag.String("data-dir", "", "persist to this directory (kfake's durable mode)")
	sync := flag.Bool("sync", false, "fsync every produced batch")
	partitions := flag.Int("partitions", 6, "partitions of auto-created topics")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*partitions)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if *sync {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "msg=\"broker listening\" addr=%s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}
