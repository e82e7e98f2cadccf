package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminServesHealthReadyMetrics(t *testing.T) {
	ready := false
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	s := New(Options{Listen: "127.0.0.1:0", Registry: reg, Ready: func() bool { return ready },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Fatalf("readyz before ready = %d", code)
	}
	ready = true
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("readyz = %d", code)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "tagpipe_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics = %d\n%s", code, body)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal("second Stop:", err)
	}
}
