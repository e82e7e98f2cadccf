// Package chaosenv reads the settings the chaos tests of every room share: how many
// operations each worker runs (TAGPIPE_CHAOS_OPS) and the seed of their random choices
// (TAGPIPE_CHAOS_SEED). It is for tests only.
package chaosenv

import (
	"os"
	"strconv"
	"testing"
)

// Ops is each worker's operation count: TAGPIPE_CHAOS_OPS when set (a positive
// count, else the test fails), short under -short, dflt otherwise.
func Ops(t testing.TB, short, dflt int) int {
	t.Helper()
	if s := os.Getenv("TAGPIPE_CHAOS_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("TAGPIPE_CHAOS_OPS=%q: want a positive count", s)
		}
		return n
	}
	if testing.Short() {
		return short
	}
	return dflt
}

// Seed is TAGPIPE_CHAOS_SEED (a number ≥ 0, else the test fails); 0 when unset, the
// seed make test runs.
func Seed(t testing.TB) uint64 {
	t.Helper()
	s := os.Getenv("TAGPIPE_CHAOS_SEED")
	if s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("TAGPIPE_CHAOS_SEED=%q: want a number ≥ 0", s)
	}
	return n
}
