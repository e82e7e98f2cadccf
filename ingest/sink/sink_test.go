package sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

func TestKafkaOptionsChecked(t *testing.T) {
	for _, o := range []KafkaOptions{{Topic: "t"}, {Brokers: []string{"x:1"}}, {Brokers: []string{"x:1"}, Topic: "t", Compression: "brotli"}} {
		if _, err := NewKafka("k", o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
