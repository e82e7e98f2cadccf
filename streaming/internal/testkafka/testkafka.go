// Package testkafka starts the Kafka backends the streaming tests run against: franz-go's
// in-process kfake and tagpipe's built-in broker, both on 127.0.0.1, and produces test
// records with franz-go's kgo client.
package testkafka

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker"
)

// Backends are the names accepted by Start.
var Backends = []string{"kfake", "broker"}

// Start runs backend with topic created with the given partitions and returns its
// bootstrap addresses. It stops with the test.
func Start(t testing.TB, backend, topic string, partitions int32) []string {
	t.Helper()
	switch backend {
	case "kfake":
		c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(partitions, topic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()
	case "broker":
		addrs := []string{startBroker(t, nil).Addr()}
		createTopic(t, addrs, topic, partitions, nil)
		return addrs
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// Record is what Produce writes.
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Time      time.Time
}

// Produce writes records to topic (explicit partitions) and waits for every ack; opts
// (TLS, SASL) are added to its client's.
func Produce(t testing.TB, addrs []string, topic string, recs []Record, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var perr error
	for _, r := range recs {
		kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Time}
		for k, v := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		wg.Add(1)
		cl.Produce(context.Background(), kr, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}
}

// Compacted is a built-in broker with one compacted topic (cleanup.policy=compact, a
// segment per produced batch), for reads across compaction gaps.
type Compacted struct {
	Addrs []string
	b     *broker.Broker
	reg   *prometheus.Registry
}

// StartCompacted runs the built-in broker with topic compacted, one partition. It stops
// with the test.
func StartCompacted(t testing.TB, topic string) *Compacted {
	t.Helper()
	reg := prometheus.NewRegistry()
	b := startBroker(t, reg)
	c := &Compacted{Addrs: []string{b.Addr()}, b: b, reg: reg}
	compact, small, ratio := "compact", "100", "0.01"
	createTopic(t, c.Addrs, topic, 1, map[string]*string{"cleanup.policy": &compact, "segment.bytes": &small, "min.cleanable.dirty.ratio": &ratio})
	return c
}

// startBroker runs the built-in broker on 127.0.0.1 with retention and the log cleaner
// left to the test (metrics into reg, if not nil) until the test ends.
func startBroker(t testing.TB, reg *prometheus.Registry) *broker.Broker {
	t.Helper()
	o := broker.DefaultOptions()
	o.Dir, o.Listen = t.TempDir(), "127.0.0.1:0"
	o.RetentionCheckInterval, o.CleanerBackoff = -1, -1
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Registry = reg
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b
}

// createTopic creates topic with partitions and configs through kadm.
func createTopic(t testing.TB, addrs []string, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic); err != nil {
		t.Fatalf("cannot create topic %q: %v", topic, err)
	}
}

// Compact runs the broker's log cleaner now and returns the records it removed.
func (c *Compacted) Compact(t testing.TB) int64 {
	t.Helper()
	n, err := c.b.CompactLogs()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Fetches is how many Fetch requests the broker has answered.
func (c *Compacted) Fetches(t testing.TB) float64 {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tagpipe_broker_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "Fetch" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
