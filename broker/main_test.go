package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(leakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var leakOptions = []goleak.Option{
	// Client libraries keep a few background goroutines alive briefly after Close.
	goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
	goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	goleak.IgnoreTopFunction("time.Sleep"),
	goleak.IgnoreAnyFunction("github.com/klauspost/compress/zstd.(*blockDec).startDecoder"),
	goleak.IgnoreAnyFunction("github.com/IBM/sarama.(*Broker).responseReceiver"),
	goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*conn).run"),
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("BROKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testOptions are broker options for a test: a temp dir, a free port on 127.0.0.1, no
// background retention.
func testOptions(t testing.TB) Options {
	o := DefaultOptions()
	o.Dir = t.TempDir()
	o.Listen = "127.0.0.1:0"
	o.DefaultPartitions = 3
	// One partition of __consumer_offsets instead of Kafka's 50: creating and closing 50
	// logs takes most of a second on a shared disk, for every broker a test starts.
	o.OffsetsTopicPartitions = 1
	o.RetentionCheckInterval = -1
	o.Logger = testLogger(t)
	return o
}

// restartBroker stops b cleanly and starts a broker with options o on b's address
// (clients reconnect to it).
func restartBroker(t testing.TB, b *Broker, o Options) *Broker {
	t.Helper()
	addr := b.Addr()
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.Listen = addr
	return startBroker(t, o)
}

// startBroker starts a broker and stops it when the test ends.
func startBroker(t testing.TB, o Options) *Broker {
	t.Helper()
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return b
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
