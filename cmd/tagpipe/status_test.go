package main

import (
	"context"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/internal/admin"
)

// tagpipe status pointed at the admin listener of a part run alone (here the listener
// `tagpipe broker` has: /metrics and /healthz, no console) says so, instead of a bare
// "404 Not Found".
func TestStatusOfAPartAlone(t *testing.T) {
	srv := admin.New(admin.Options{Listen: "127.0.0.1:0"})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	out, err := runTagpipeErr("--data-dir", t.TempDir(), "status", "--admin", srv.Addr())
	if err == nil || !strings.Contains(err.Error(), "has no console") || !strings.Contains(err.Error(), "not `tagpipe up`") {
		t.Fatalf("status of a broker's admin listener: %v\n%s", err, out)
	}
}
