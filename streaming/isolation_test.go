package streaming

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// With read_committed the engine reads a topic written by a transactional producer as a
// Kafka consumer does: the committed transactions' records, not the aborted ones, no
// transaction markers, and nothing of a transaction still open until it commits.
func TestReadCommitted(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) {
			addrs, p, txn := transactions(t, backend)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			txn(true, "c1", "c2")
			txn(false, "a1", "a2", "a3")
			txn(true, "c3", "c4")

			col := newCollected()
			o := engineOpts(addrs, t.TempDir())
			o.IsolationLevel = "read_committed"
			o.OnBatch = col.onBatch
			e := startEngine(t, collectJob(col, 10*time.Millisecond), o)
			col.waitTotal(t, e, 4)
			// An open transaction is not read until it commits.
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("c5")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // a few batch intervals with the transaction open
			if n := len(values(col)); n != 4 {
				t.Fatalf("read %d records with a transaction open, want 4: %v", n, values(col))
			}
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			col.waitTotal(t, e, 5)
			if err := e.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(values(col)); got != "[c1 c2 c3 c4 c5]" {
				t.Fatalf("read %s, want the committed records only", got)
			}
		})
	}
}

// With the default read_uncommitted the engine reads every data record, aborted ones
// included, and never a transaction marker (kafka-go's Conn would hand the markers over
// as records); a data record shaped like a marker is still read.
func TestReadUncommittedSkipsMarkers(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) {
			addrs, _, txn := transactions(t, backend)
			txn(true, "c1", "c2")
			txn(false, "a1", "a2", "a3")
			testkafka.Produce(t, addrs, "events", []testkafka.Record{{Partition: 0, Key: []byte{0, 0, 0, 1}, Value: []byte("\x00\x00lookalike")}})
			txn(true, "c3", "c4")

			col := newCollected()
			o := engineOpts(addrs, t.TempDir())
			o.OnBatch = col.onBatch
			e := startEngine(t, collectJob(col, 10*time.Millisecond), o)
			col.waitTotal(t, e, 8)
			if err := e.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprintf("%q", values(col)), `["\x00\x00lookalike" "a1" "a2" "a3" "c1" "c2" "c3" "c4"]`; got != want {
				t.Fatalf("read %s, want %s", got, want)
			}
		})
	}
}

// transactions starts backend with a two-partition "events" topic and a franz-go
// transactional producer on it; txn runs one transaction that writes vals round-robin
// over the partitions and commits or aborts it.
func transactions(t *testing.T, backend string) (addrs []string, p *kgo.Client, txn func(commit bool, vals ...string)) {
	addrs = testkafka.Start(t, backend, "events", 2)
	p, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID("tx-"+backend),
		kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	txn = func(commit bool, vals ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if err := p.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	return addrs, p, txn
}

// values lists the collected records' values, sorted.
func values(c *collected) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, rs := range c.byBatch {
		for _, r := range rs {
			out = append(out, string(r.Value))
		}
	}
	sort.Strings(out)
	return out
}

func TestIsolationLevelChecked(t *testing.T) {
	o := engineOpts([]string{"127.0.0.1:1"}, t.TempDir())
	o.IsolationLevel = "serializable"
	if _, err := New(NewJob("x", time.Second), o); err == nil {
		t.Fatal("a bad isolation level was accepted")
	}
}
