package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tagpipe perf produce / consume: kafka-producer-perf-test.sh and
// kafka-consumer-perf-test.sh, through the Kafka protocol (so against the built-in
// broker or any Kafka cluster), printing what they print.
func init() {
	register(func(a *app) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "perf",
			Short: "Load-test a broker: produce or consume N records and print rates and latencies (like kafka-*-perf-test.sh)",
		}
		cmd.AddCommand(perfProduceCmd(a), perfConsumeCmd(a))
		return cmd
	})
}

func perfProduceCmd(a *app) *cobra.Command {
	var (
		kf          kafkaFlags
		topic       string
		num         int64
		size        int
		throughput  float64
		acks        string
		compression string
		linger      time.Duration
		payloadFile string
		interval    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send --num-records records of --record-size bytes as fast as acknowledged, or at --throughput records/s",
		Example: `  tagpipe perf produce --topic perf --num-records 1000000 --record-size 100 --acks all
  tagpipe perf produce --topic perf --num-records 500000 --throughput 50000 --payload-file events.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if num <= 0 {
				return errors.New("--num-records must be positive")
			}
			payloads, err := perfPayloads(payloadFile, size)
			if err != nil {
				return err
			}
			po, err := producerOpts(acks, compression)
			if err != nil {
				return err
			}
			cl, err := kf.client(a, append(po, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(linger),
				kgo.RecordDeliveryTimeout(kf.timeout), kgo.AllowAutoTopicCreation())...)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := newPerfStats(num, interval, cmd.OutOrStdout(), time.Now)
			thr := throttler{rate: throughput, now: time.Now, sleep: sleepCtx(cmd.Context())}
			rng := rand.New(rand.NewPCG(1, 2))
			var (
				mu       sync.Mutex
				firstErr error
			)
			start := time.Now()
			for i := range num {
				if cmd.Context().Err() != nil {
					break
				}
				thr.wait(i, start)
				v := payloads[0]
				if len(payloads) > 1 {
					v = payloads[rng.IntN(len(payloads))]
				}
				sent := time.Now()
				cl.Produce(cmd.Context(), &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
					st.record(time.Since(sent), len(r.Value))
				})
			}
			if err := cl.Flush(cmd.Context()); err != nil && firstErr == nil {
				firstErr = err
			}
			st.final()
			mu.Lock()
			defer mu.Unlock()
			if firstErr != nil {
				return fmt.Errorf("producing to %s: %w", topic, produceError(firstErr, topic))
			}
			return nil
		},
	}
	kf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "topic to produce to (created by the broker if it auto-creates topics)")
	f.Int64Var(&num, "num-records", 0, "records to send")
	f.IntVar(&size, "record-size", 100, "bytes per record (random letters), unless --payload-file")
	f.Float64Var(&throughput, "throughput", -1, "records per second at most (-1: as fast as they are acknowledged)")
	f.StringVar(&acks, "acks", "all", "all, 1 or 0")
	f.StringVar(&compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&linger, "linger", 5*time.Millisecond, "wait this long to fill a batch")
	f.StringVar(&payloadFile, "payload-file", "", "send the lines of this file (each record one, picked at random) instead of random letters")
	f.DurationVar(&interval, "reporting-interval", 5*time.Second, "print a line per interval")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("num-records")
	return cmd
}

// perfPayloads are the record values: the non-empty lines of file, or one value of size
// random upper-case letters (as kafka-producer-perf-test.sh sends).
func perfPayloads(file string, size int) ([][]byte, error) {
	if file == "" {
		if size < 0 {
			return nil, errors.New("--record-size must not be negative")
		}
		v := make([]byte, size)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range v {
			v[i] = byte('A' + rng.IntN(26))
		}
		return [][]byte{v}, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--payload-file: %w", err)
	}
	var out [][]byte
	for line := range bytes.Lines(b) {
		if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--payload-file %s has no non-empty line", file)
	}
	return out, nil
}

// throttler keeps a sender at rate records/s (<= 0: no limit), as Kafka's
// ThroughputThrottler: before record i it sleeps until i/rate seconds after start.
type throttler struct {
	rate  float64
	now   func() time.Time
	sleep func(time.Duration)
}

func (t throttler) wait(i int64, start time.Time) {
	if t.rate <= 0 {
		return
	}
	due := start.Add(time.Duration(float64(i) / t.rate * float64(time.Second)))
	if d := due.Sub(t.now()); d > time.Millisecond {
		t.sleep(d)
	}
}

func sleepCtx(ctx context.Context) func(time.Duration) {
	return func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// perfStats is kafka-producer-perf-test.sh's Stats: a line per reporting interval
// (records, rate, MB/s, average and max latency of the window) and a final one with
// the latency percentiles of a sample of at most 500 000 records.
type perfStats struct {
	mu       sync.Mutex
	out      io.Writer
	now      func() time.Time
	interval time.Duration
	every    int64 // sample one latency in every
	samples  []time.Duration

	start            time.Time
	count, bytes     int64
	latSum, latMax   time.Duration
	wStart           time.Time
	wCount, wBytes   int64
	wLatSum, wLatMax time.Duration
}

func newPerfStats(num int64, interval time.Duration, out io.Writer, now func() time.Time) *perfStats {
	t := now()
	return &perfStats{out: out, now: now, interval: interval, every: max(1, num/500_000), start: t, wStart: t}
}

func (s *perfStats) record(lat time.Duration, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count%s.every == 0 {
		s.samples = append(s.samples, lat)
	}
	s.count++
	s.bytes += int64(n)
	s.latSum += lat
	s.latMax = max(s.latMax, lat)
	s.wCount++
	s.wBytes += int64(n)
	s.wLatSum += lat
	s.wLatMax = max(s.wLatMax, lat)
	if now := s.now(); s.interval > 0 && now.Sub(s.wStart) >= s.interval {
		el := now.Sub(s.wStart).Seconds()
		fmt.Fprintf(s.out, "%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.\n",
			s.wCount, float64(s.wCount)/el, float64(s.wBytes)/el/(1<<20), ms(s.wLatSum)/float64(s.wCount), ms(s.wLatMax))
		s.wStart, s.wCount, s.wBytes, s.wLatSum, s.wLatMax = now, 0, 0, 0, 0
	}
}

func (s *perfStats) final() {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := max(s.now().Sub(s.start).Seconds(), 1e-9)
	avg := 0.0
	if s.count > 0 {
		avg = ms(s.latSum) / float64(s.count)
	}
	slices.Sort(s.samples)
	pct := func(p float64) int64 {
		if len(s.samples) == 0 {
			return 0
		}
		return s.samples[min(len(s.samples)-1, int(p*float64(len(s.samples))))].Milliseconds()
	}
	fmt.Fprintf(s.out, "%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.\n",
		s.count, float64(s.count)/el, float64(s.bytes)/el/(1<<20), avg, ms(s.latMax), pct(0.5), pct(0.95), pct(0.99), pct(0.999))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func perfConsumeCmd(a *app) *cobra.Command {
	var (
		kf         kafkaFlags
		topic      string
		messages   int64
		group      string
		fromLatest bool
		timeout    time.Duration
		noHeader   bool
	)
	cmd := &cobra.Command{
		Use:     "consume",
		Short:   "Read --messages records of a topic as fast as possible and print the rates",
		Example: `  tagpipe perf consume --topic perf --messages 1000000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if messages <= 0 {
				return errors.New("--messages must be positive")
			}
			reset := kgo.NewOffset().AtStart()
			if fromLatest {
				reset = kgo.NewOffset().AtEnd()
			}
			var (
				rebalanceMu sync.Mutex
				assigned    time.Time
			)
			var throttled throttleSum
			opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(reset), kgo.WithHooks(&throttled)}
			if group != "" {
				opts = append(opts, kgo.ConsumerGroup(group), kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
					rebalanceMu.Lock()
					if assigned.IsZero() {
						assigned = time.Now()
					}
					rebalanceMu.Unlock()
				}))
			}
			start := time.Now()
			cl, err := kf.client(a, opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			var n, size int64
			last := time.Now()
			for n < messages {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				fs := cl.PollFetches(ctx)
				cancel()
				if cmd.Context().Err() != nil || fs.IsClientClosed() {
					break
				}
				if err := fetchError(fs); err != nil {
					return err
				}
				got := int64(0)
				fs.EachRecord(func(r *kgo.Record) {
					if n+got < messages {
						got++
						size += int64(len(r.Key) + len(r.Value))
					}
				})
				if got > 0 {
					n += got
					last = time.Now()
				} else if time.Since(last) >= timeout {
					break
				}
			}
			end := time.Now()
			rebalanceMu.Lock()
			reb := time.Duration(0)
			if !assigned.IsZero() {
				reb = assigned.Sub(start)
			}
			rebalanceMu.Unlock()
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if !noHeader {
				fmt.Fprintln(w, "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
			}
			el := max(end.Sub(start).Seconds(), 1e-9)
			fetchEl := max((end.Sub(start) - reb).Seconds(), 1e-9)
			mb := float64(size) / (1 << 20)
			fmt.Fprintf(w, "%s, %s, %.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f\n", perfTime(start), perfTime(end),
				mb, mb/el, n, float64(n)/el, reb.Milliseconds(), (end.Sub(start) - reb).Milliseconds(), mb/fetchEl, float64(n)/fetchEl)
			if n < messages {
				w.Flush()
				err := fmt.Errorf("exiting before consuming the expected number of messages: %d of %d, then no record for %s (--timeout)", n, messages, timeout)
				if d := throttled.total(); d > 0 {
					// A consumer over its quota gets empty fetches while it is muted, which
					// reads as a topic with nothing left.
					err = fmt.Errorf("%w; the broker throttled this client for %s meanwhile: a client quota (consumer_byte_rate or request_percentage; tagpipe quotas describe)", err, d.Round(time.Millisecond))
				}
				return err
			}
			return nil
		},
	}
	kf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "topic to read")
	f.Int64Var(&messages, "messages", 0, "records to read")
	f.StringVar(&group, "group", "", "read as a member of this consumer group (default: no group; rebalance.time.ms is then 0)")
	f.BoolVar(&fromLatest, "from-latest", false, "start at the end of the topic (default: the earliest offset, or the group's committed ones)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up when no record arrives for this long")
	f.BoolVar(&noHeader, "hide-header", false, "do not print the header line")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("messages")
	return cmd
}

// throttleSum adds up the throttle times brokers send a client (kgo's
// HookBrokerThrottle): the time client quotas held it back.
type throttleSum struct {
	mu sync.Mutex
	d  time.Duration
}

func (s *throttleSum) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	s.mu.Lock()
	s.d += d
	s.mu.Unlock()
}

func (s *throttleSum) total() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d
}

// perfTime is t as kafka-consumer-perf-test.sh prints it (yyyy-MM-dd HH:mm:ss:SSS).
func perfTime(t time.Time) string {
	return fmt.Sprintf("%s:%03d", t.Format(time.DateTime), t.Nanosecond()/int(time.Millisecond))
}
