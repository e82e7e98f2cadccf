//go:build e2e

// Package e2e is tagpipe's end-to-end suite (`make e2e`, behind the build tag e2e so
// `make test` does not run it). It drives the built binary (bin/tagpipe, or $TAGPIPE_BIN)
// as child processes — `tagpipe broker`, `tagpipe ingest`, `tagpipe stream` as separate
// processes on free 127.0.0.1 ports, with a t.TempDir() data dir — drops the MovieLens
// sample and a generated Taobao-style log into the spool directory, and checks every
// table with `tagpipe sql`, the nightly tag job's output against an independent Go
// computation of the interest model, and exactly-once delivery across `kill -9` of the
// collector, the broker and the streaming process (TestFaultRound; seeded by
// $E2E_SEED). Everything it writes is below t.TempDir(); a failing test prints the tail
// of each process's log.
package e2e
