// Package kafkatest runs the collector's tests against real Kafka-protocol brokers:
// franz-go's in-process kfake cluster and (when available) tagpipe's own broker. One test
// body, several backends.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker"
)

// Broker is one running backend.
type Broker interface {
	Addr() string
	// Stop shuts the broker down (data stays in its directory when it persists).
	Stop()
}

// Backend starts brokers of one kind. Start with port 0 picks a free port; a restart
// passes the previous port and the same dir, so acknowledged records come back.
type Backend struct {
	Name  string
	Start func(t testing.TB, dir string, port int, topics map[string]int32) Broker
}

// Backends lists every backend the collector is tested against.
func Backends() []Backend { return backends }

var backends = []Backend{{Name: "kfake", Start: startKfake}, {Name: "tagpipe", Start: startTagpipe}}

type tagpipeBroker struct{ b *broker.Broker }

func (b *tagpipeBroker) Addr() string { return b.b.Addr() }
func (b *tagpipeBroker) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.b.Stop(ctx)
}

// startTagpipe runs the project's own broker (an ordinary Kafka peer to the collector).
func startTagpipe(t testing.TB, dir string, port int, topics map[string]int32) Broker {
	o := broker.DefaultOptions()
	o.Dir = dir
	o.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	o.RetentionCheckInterval = -1
	// A new consumer group gets its first generation at once (Kafka waits 3 s for more
	// members), so tests of the kafka source do not wait for it at every join.
	o.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	o.Logger = slog.New(slog.DiscardHandler)
	var b *broker.Broker
	var err error
	for i := 0; i < 50; i++ {
		if b, err = broker.New(o); err == nil {
			if err = b.Start(context.Background()); err == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("cannot start the tagpipe broker: %v", err)
	}
	tb := &tagpipeBroker{b}
	if len(topics) > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for name, n := range topics {
			resp, err := adm.CreateTopic(ctx, n, 1, nil, name)
			if err == nil {
				err = resp.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				t.Fatalf("cannot create topic %s: %v", name, err)
			}
		}
	}
	return tb
}

type kfakeBroker struct{ c *kfake.Cluster }

func (k *kfakeBroker) Addr() string { return k.c.ListenAddrs()[0] }
func (k *kfakeBroker) Stop()        { k.c.Close() }

func startKfake(t testing.TB, dir string, port int, topics map[string]int32) Broker {
	opts := []kfake.Opt{kfake.Ports(port), kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SyncWrites(),
		kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}
	for name, n := range topics {
		opts = append(opts, kfake.SeedTopics(n, name))
	}
	var c *kfake.Cluster
	var err error
	// A restarted broker may find its port in TIME_WAIT for a moment.
	for i := 0; i < 50; i++ {
		if c, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("cannot start kfake: %v", err)
	}
	return &kfakeBroker{c}
}

// Port returns the port of a host:port.
func Port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// Record is what tests compare.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   map[string]string
}

// ReadAll reads every record of topic up to its current end offsets; opts (TLS, SASL:
// kafkasec.Security.KgoOpts) are given to its clients, as to Count's.
func ReadAll(t testing.TB, addr, topic string, opts ...kgo.Opt) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("cannot list end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	cons, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []Record
	got := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if got[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: timed out with %d records (want ends %v, at %v)", topic, len(out), want, got)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= want[r.Partition] {
				return
			}
			rec := Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
			if len(r.Headers) > 0 {
				rec.Headers = map[string]string{}
				for _, h := range r.Headers {
					rec.Headers[h.Key] = string(h.Value)
				}
			}
			out = append(out, rec)
			got[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// WaitCount polls until topic holds at least n records (by end offsets) or fails.
func WaitCount(t testing.TB, addr, topic string, n int64, timeout time.Duration, opts ...kgo.Opt) {
	t.Helper()
	if got := Count(t, addr, topic, n, timeout, opts...); got < n {
		t.Fatalf("topic %s has %d records after %v, want %d", topic, got, timeout, n)
	}
}

// Count polls until topic holds at least n records or timeout passes, and returns the
// count it saw last.
func Count(t testing.TB, addr, topic string, n int64, timeout time.Duration, opts ...kgo.Opt) int64 {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	var total int64
	for time.Now().Before(deadline) {
		// Short per-call timeout: for a topic that does not exist yet the client retries
		// until its context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		ends, err := adm.ListEndOffsets(ctx, topic)
		cancel()
		if err == nil {
			total = 0
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
			if total >= n {
				return total
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return total
}

// CreateTopic creates topic with n partitions (an existing topic is fine).
func CreateTopic(t testing.TB, addr, topic string, n int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, n, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("cannot create topic %s: %v", topic, err)
	}
}
