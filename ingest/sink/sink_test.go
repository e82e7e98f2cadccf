package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

func TestFileRollRolls(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1000, 0)
	s, err := NewFileRoll("f", FileRollOptions{Dir: dir, RollInterval: time.Minute, now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Deliver(context.Background(), []ingest.Event{{Body: []byte("a")}, {Body: []byte("b")}})
	now = now.Add(2 * time.Minute)
	s.Deliver(context.Background(), []ingest.Event{{Body: []byte("c")}})
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	var all []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, string(b))
	}
	if strings.Join(all, "|") != "a\nb\n|c\n" {
		t.Fatalf("contents %q", all)
	}
}

// fullDisk writes part of what it is given and fails, while full is set (a disk that
// fills in the middle of a batch).
type fullDisk struct {
	w    io.Writer
	full *bool
}

func (d fullDisk) Write(p []byte) (int, error) {
	if *d.full {
		n, _ := d.w.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return d.w.Write(p)
}

// A batch that fails on a full disk leaves nothing in the file, and the sink takes the
// batch again once there is space, without waiting for the next roll: the file holds
// every line once, none torn.
func TestFileRollFullDisk(t *testing.T) {
	dir := t.TempDir()
	full := false
	s, err := NewFileRoll("f", FileRollOptions{Dir: dir, RollInterval: -1,
		wrap: func(w io.Writer) io.Writer { return fullDisk{w, &full} }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch := func(from int) []ingest.Event {
		var evs []ingest.Event
		for i := from; i < from+3; i++ {
			evs = append(evs, ingest.Event{Body: fmt.Appendf(nil, "line %d", i)})
		}
		return evs
	}
	ctx := context.Background()
	if err := s.Deliver(ctx, batch(0)); err != nil {
		t.Fatal(err)
	}
	full = true
	if err := s.Deliver(ctx, batch(3)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("delivery on a full disk: %v", err)
	}
	full = false
	if err := s.Deliver(ctx, batch(3)); err != nil {
		t.Fatalf("delivery once there is space again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if want := "line 0\nline 1\nline 2\nline 3\nline 4\nline 5\n"; string(b) != want {
		t.Fatalf("file holds %q, want %q", b, want)
	}
}

type fakeSink struct {
	name  string
	fail  bool
	calls int
}

func (f *fakeSink) Name() string { return f.name }
func (f *fakeSink) Deliver(context.Context, []ingest.Event) error {
	f.calls++
	if f.fail {
		return errors.New(f.name + " down")
	}
	return nil
}
func (f *fakeSink) Close() error { return nil }

func TestFailoverPenalizesAndRecovers(t *testing.T) {
	main, backup := &fakeSink{name: "main", fail: true}, &fakeSink{name: "backup"}
	now := time.Unix(0, 0)
	g := NewFailover("g", []ingest.Sink{backup, main}, []int{1, 10}, 10*time.Second, nil)
	g.now = func() time.Time { return now }
	evs := []ingest.Event{{Body: []byte("x")}}
	if err := g.Deliver(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if main.calls != 1 || backup.calls != 1 {
		t.Fatalf("calls main %d backup %d", main.calls, backup.calls)
	}
	// Penalized: the next batch goes straight to the backup.
	g.Deliver(context.Background(), evs)
	if main.calls != 1 || backup.calls != 2 {
		t.Fatalf("penalty ignored: main %d backup %d", main.calls, backup.calls)
	}
	// After the penalty the main sink is tried again and, healed, used.
	main.fail = false
	now = now.Add(time.Minute)
	g.Deliver(context.Background(), evs)
	if main.calls != 2 || backup.calls != 2 {
		t.Fatalf("after penalty: main %d backup %d", main.calls, backup.calls)
	}
	// Everything down: an error naming both.
	main.fail, backup.fail = true, true
	now = now.Add(time.Minute)
	err := g.Deliver(context.Background(), evs)
	if err == nil || !strings.Contains(err.Error(), "main down") || !strings.Contains(err.Error(), "backup down") {
		t.Fatalf("err = %v", err)
	}
}

// load_balance: round_robin spreads batches evenly; a failing sink's batch goes to the
// next one, and with backoff the failed sink is left out until its backoff passes.
func TestLoadBalanceRoundRobinWithBackoff(t *testing.T) {
	a, b, c := &fakeSink{name: "a"}, &fakeSink{name: "b"}, &fakeSink{name: "c"}
	now := time.Unix(0, 0)
	g := NewLoadBalance("g", []ingest.Sink{a, b, c}, "round_robin", true, 10*time.Second, nil)
	g.now = func() time.Time { return now }
	evs := []ingest.Event{{Body: []byte("x")}}
	deliver := func(n int) {
		t.Helper()
		for range n {
			if err := g.Deliver(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls := func() [3]int { return [3]int{a.calls, b.calls, c.calls} }
	deliver(6)
	if calls() != [3]int{2, 2, 2} {
		t.Fatalf("round robin: %v", calls())
	}
	// b fails on its turn: its batch goes to c, and b is backed off.
	b.fail = true
	deliver(3) // a, b→c, c
	if calls() != [3]int{3, 3, 4} {
		t.Fatalf("after b failed: %v", calls())
	}
	deliver(3) // a, (b backed off) c, c
	if calls() != [3]int{4, 3, 6} {
		t.Fatalf("b backed off: %v", calls())
	}
	// Once its backoff has passed b is tried again and, healed, used.
	b.fail = false
	now = now.Add(time.Minute)
	deliver(3)
	if calls() != [3]int{5, 4, 7} {
		t.Fatalf("b back: %v", calls())
	}
	// All down: the batch fails (the take rolls back), naming every sink.
	a.fail, b.fail, c.fail = true, true, true
	if err := g.Deliver(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "a down") || !strings.Contains(err.Error(), "c down") {
		t.Fatalf("err = %v", err)
	}
}

// random: every sink gets a share; without backoff a failed sink is offered batches
// again at once (and its batches go on to the others).
func TestLoadBalanceRandom(t *testing.T) {
	a, b := &fakeSink{name: "a"}, &fakeSink{name: "b", fail: true}
	g := NewLoadBalance("g", []ingest.Sink{a, b}, "random", false, 0, nil)
	for range 200 {
		if err := g.Deliver(context.Background(), []ingest.Event{{Body: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls != 200 || b.calls == 0 || b.calls == 200 {
		t.Fatalf("calls a %d b %d: want every batch on a, b picked first in some", a.calls, b.calls)
	}
}

func TestKafkaOptionsChecked(t *testing.T) {
	for _, o := range []KafkaOptions{{Topic: "t"}, {Brokers: []string{"x:1"}}, {Brokers: []string{"x:1"}, Topic: "t", Compression: "brotli"}} {
		if _, err := NewKafka("k", o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// The http sink POSTs a Flume JSON array and fails the batch on anything but 2xx (a
// full next tier's 503 included), so the take rolls back.
func TestHTTPSinkStatus(t *testing.T) {
	var got []byte
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		fmt.Fprint(w, "channel full")
	}))
	defer srv.Close()
	s, err := NewHTTP("h", HTTPOptions{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := []ingest.Event{{Headers: ingest.Headers{{Key: "k", Value: "v"}}, Body: []byte("hi")}, {Body: []byte{0xff}}}
	if err := s.Deliver(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if want := `[{"headers":{"k":"v"},"body":"hi"},{"headers":{"tagpipe.body_encoding":"base64"},"body":"/w=="}]` + "\n"; string(got) != want {
		t.Fatalf("posted %s, want %s", got, want)
	}
	status = http.StatusServiceUnavailable
	if err := s.Deliver(context.Background(), evs); err == nil || !strings.Contains(err.Error(), "503 Service Unavailable: channel full") {
		t.Fatalf("503: %v", err)
	}
	if _, err := NewHTTP("h", HTTPOptions{Endpoint: "localhost:80"}); err == nil {
		t.Fatal("an endpoint without a scheme was accepted")
	}
}
