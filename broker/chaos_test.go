package broker

// TestChaos runs many clients and an admin against one broker at once, for a bounded
// number of operations, and then checks what must hold whatever happened in between:
// the broker answers, every acknowledged record of the topics never deleted is read back
// at its offset (unless DeleteRecords or retention moved the log start past it), no
// aborted record is visible to read_committed, the compacted topic keeps each key's
// newest record, no two members of a consumer group (KIP-848, chaos848_test.go) own a
// partition at once and each such group ends Stable or Empty, no goroutine is left
// after Stop, and the data dir restarts with the same logs and the groups' committed
// offsets. TAGPIPE_CHAOS_OPS scales the operation counts up for long runs and
// TAGPIPE_CHAOS_SEED varies the workers' choices.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/internal/chaosenv"
)

const (
	chaosTracked   = "chaos-a" // offsets of acknowledged records tracked; DeleteRecords, retention, partitions added
	chaosValues    = "chaos-b" // kafka-go and acks=0 producers; nothing removes data: values tracked
	chaosCompacted = "chaos-c" // cleanup.policy=compact: each key's newest record stays
)

// chaosLedger is what the clients were told: acknowledged records by topic-partition and
// offset, aborted values, values acknowledged without an offset, and per key of the
// compacted topic the newest acknowledged offset.
type chaosLedger struct {
	mu       sync.Mutex
	acked    map[int32]map[int64]string // chaos-a
	once     map[string]bool            // values that must be read exactly once (idempotent, transactional)
	aborted  map[string]bool
	values   map[string]bool // chaos-b
	newest   map[string]chaosKeyed
	produced atomic.Int64
}

type chaosKeyed struct {
	partition int32
	offset    int64
	value     string
}

func newChaosLedger() *chaosLedger {
	return &chaosLedger{acked: map[int32]map[int64]string{}, once: map[string]bool{}, aborted: map[string]bool{},
		values: map[string]bool{}, newest: map[string]chaosKeyed{}}
}

func (l *chaosLedger) ack(p int32, off int64, v string, once bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acked[p] == nil {
		l.acked[p] = map[int64]string{}
	}
	if prev, ok := l.acked[p][off]; ok {
		panic(fmt.Sprintf("BUG: two records acknowledged at %s-%d offset %d: %q and %q", chaosTracked, p, off, prev, v))
	}
	l.acked[p][off] = v
	if once {
		l.once[v] = true
	}
	l.produced.Add(1)
}

// chaosRun holds what the workers share.
type chaosRun struct {
	t    *testing.T
	addr string
	ops  int
	l    *chaosLedger

	half atomic.Bool // the "idem" producer is half done: no more short retention

	k848 *chaos848 // the consumer groups' members and what they own

	errMu sync.Mutex
	errs  []string // invariant violations seen by workers (t.Error is not for goroutines of their own)
}

func (r *chaosRun) fail(format string, args ...any) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.errs) < 50 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

func chaosBrokerOptions(t *testing.T, dir string) Options {
	o := testOptions(t)
	o.Dir = dir
	o.DefaultPartitions = 2
	o.SegmentBytes = 4096
	o.RetentionCheckInterval = 20 * time.Millisecond
	o.CleanerBackoff = 20 * time.Millisecond
	o.TransactionAbortInterval = 100 * time.Millisecond
	o.MaxPartitions = 8
	o.Groups.MinSessionTimeout = 500 * time.Millisecond
	o.Groups.InitialRebalanceDelay = 100 * time.Millisecond
	o.Groups.Tick = 20 * time.Millisecond
	// Consumer groups (KIP-848): a member taken off the network is fenced soon.
	o.Groups.ConsumerSessionTimeout = chaosSessionTimeout
	o.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	return o
}

func TestChaos(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	o := chaosBrokerOptions(t, dir)
	fences := &fenceLog{ids: map[string]bool{}} // consumer-group members fenced, from the broker's log
	o.Logger = slog.New(fenceHandler{o.Logger.Handler(), fences})
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	run := &chaosRun{t: t, addr: b.Addr(), ops: chaosenv.Ops(t, 8, 25), l: newChaosLedger()}
	// Long runs (TAGPIPE_CHAOS_OPS) get longer than testCtx's minute.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(run.ops)*time.Second)
	t.Cleanup(cancel)

	admCl, adm := newAdmin(t, run.addr)
	compact, small, ratio, lag := "compact", "1024", "0.01", "0"
	for _, c := range []struct {
		topic string
		parts int32
		cfg   map[string]*string
	}{
		{chaosTracked, 3, nil},
		{chaosValues, 2, nil},
		{chaosCompacted, 2, map[string]*string{"cleanup.policy": &compact, "segment.bytes": &small,
			"min.cleanable.dirty.ratio": &ratio, "min.compaction.lag.ms": &lag}},
	} {
		if _, err := adm.CreateTopic(ctx, c.parts, 1, c.cfg, c.topic); err != nil {
			t.Fatalf("create %s: %v", c.topic, err)
		}
	}

	k848 := newChaos848(run, fences)
	run.k848 = k848
	stop := make(chan struct{}) // closed when the producers and admins are done: consumers end
	var producers, consumers sync.WaitGroup
	workers := []func(int){
		run.kgoProducer(ctx, "idem", true, kgo.AllISRAcks(), "zstd"),
		run.kgoProducer(ctx, "idem-lz4", true, kgo.AllISRAcks(), "lz4"),
		run.kgoProducer(ctx, "plain-all", false, kgo.AllISRAcks(), "gzip"),
		run.kgoProducer(ctx, "plain-one", false, kgo.LeaderAck(), "snappy"),
		run.kgoProducer(ctx, "plain-none", false, kgo.NoAck(), "none"),
		run.txnProducer(ctx, "txn-1", "none"),
		run.txnProducer(ctx, "txn-2", "snappy"),
		run.compactProducer(ctx),
		run.saramaProducer(ctx),
		run.kafkaGoProducer(ctx),
		run.admin(ctx, b),
		run.rawRequests(ctx),
		run.rawSessions(ctx),
		k848.worker(ctx),
		k848.rawConsumers(ctx),
	}
	began := time.Now()
	for i, w := range workers {
		producers.Add(1)
		go func() {
			defer producers.Done()
			w(int(chaosenv.Seed(t))*100 + i)
		}()
	}
	for _, c := range []func(<-chan struct{}){
		run.kgoDirectConsumer(ctx),
		run.kgoGroupConsumer(ctx),
		run.kafkaGoGroupConsumer(),
		run.saramaGroupConsumer(),
	} {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			c(stop)
		}()
	}
	producers.Wait()
	t.Logf("load done after %v", time.Since(began).Round(time.Millisecond))
	// The consumer groups (KIP-848) settle once nothing changes their topics any more.
	k848.settle(t, ctx, admCl, adm)
	t.Logf("consumer groups settled after %v", time.Since(began).Round(time.Millisecond))
	k848.closeAll()
	k848.check(t)
	t.Logf("consumer groups settled and closed after %v", time.Since(began).Round(time.Millisecond))
	close(stop)
	consumers.Wait()
	for _, e := range run.errs {
		t.Error(e)
	}
	t.Logf("%d records acknowledged with offsets, %d aborted values, %d kafka-go values, %d compacted keys",
		run.l.produced.Load(), len(run.l.aborted), len(run.l.values), len(run.l.newest))

	// The broker is alive and answers.
	if _, err := adm.ApiVersions(ctx); err != nil {
		t.Fatalf("ApiVersions after chaos: %v", err)
	}
	if _, err := adm.Metadata(ctx); err != nil {
		t.Fatalf("Metadata after chaos: %v", err)
	}
	// Retention off, so the logs stay as they are while they are checked and across the
	// restart; then the transactions left open time out and the compacted topic is cleaned.
	never := "-1"
	if err := alterTopic(ctx, adm, chaosTracked, "retention.ms", &never); err != nil {
		t.Fatalf("retention.ms=-1: %v", err)
	}
	waitFor(t, "open transactions aborted (last stable offset = high watermark)", func() bool {
		ends, err1 := adm.ListEndOffsets(ctx, chaosTracked)
		lsos, err2 := adm.ListCommittedOffsets(ctx, chaosTracked)
		if err1 != nil || err2 != nil || ends.Error() != nil || lsos.Error() != nil {
			return false
		}
		same := true
		ends.Each(func(o kadm.ListedOffset) {
			if l, _ := lsos.Lookup(o.Topic, o.Partition); l.Offset != o.Offset {
				same = false
			}
		})
		return same
	})
	if _, err := b.CompactLogs(); err != nil {
		t.Fatalf("CompactLogs: %v", err)
	}
	before := chaosOffsets(t, ctx, adm)
	committed := chaosCommitted(t, ctx, adm)
	run.check(t, ctx, before)
	adm.Close()

	// Stop: nothing of the broker or the clients runs on.
	if err := b.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := goleak.Find(append(leakOptions, ignore)...); err != nil {
		t.Errorf("goroutines left after Stop: %v", err)
	}

	// The data dir starts again with the same logs: nothing acknowledged truncated.
	o2 := chaosBrokerOptions(t, dir)
	o2.RetentionCheckInterval = -1
	b2 := startBroker(t, o2)
	run.addr = b2.Addr()
	_, adm2 := newAdmin(t, run.addr)
	after := chaosOffsets(t, ctx, adm2)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s after restart: log start/end %v, before %v", k, after[k], v)
		}
	}
	run.check(t, ctx, after)
	// The groups' committed offsets too (offsets.log).
	if got := chaosCommitted(t, ctx, adm2); !maps.Equal(got, committed) {
		t.Errorf("committed offsets after restart:\n%v\nbefore:\n%v", got, committed)
	}
	t.Logf("%d committed offsets of the groups compared across the restart", len(committed))
}

// chaosCommitted are the committed offsets of every group the workers use, by
// group/topic-partition.
func chaosCommitted(t *testing.T, ctx context.Context, adm *kadm.Client) map[string]int64 {
	t.Helper()
	groups := []string{"chaos-g1", "chaos-g2", "chaos-g3", "chaos-g4", chaosNamed, chaosRegex, "chaos-k3"}
	resps := adm.FetchManyOffsets(ctx, groups...)
	out := map[string]int64{}
	for _, g := range groups {
		r := resps[g]
		if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
			t.Fatalf("fetch offsets of %s: %v", g, r.Err)
		}
		r.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil {
				out[fmt.Sprintf("%s/%s-%d", g, o.Topic, o.Partition)] = o.At
			}
		})
	}
	return out
}

func alterTopic(ctx context.Context, adm *kadm.Client, topic, key string, value *string) error {
	op := kadm.SetConfig
	if value == nil {
		op = kadm.DeleteConfig
	}
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: key, Value: value}}, topic)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// chaosOffsets are the log start and end offsets of the checked topics' partitions.
func chaosOffsets(t *testing.T, ctx context.Context, adm *kadm.Client) map[string][2]int64 {
	t.Helper()
	starts, err := adm.ListStartOffsets(ctx, chaosTracked, chaosValues, chaosCompacted)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, chaosTracked, chaosValues, chaosCompacted)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := map[string][2]int64{}
	starts.Each(func(o kadm.ListedOffset) {
		e, _ := ends.Lookup(o.Topic, o.Partition)
		out[fmt.Sprintf("%s-%d", o.Topic, o.Partition)] = [2]int64{o.Offset, e.Offset}
	})
	return out
}

// chaosRecord is one record read back.
type chaosRecord struct {
	offset  int64
	key     string
	value   string
	control bool
}

// readAll reads every partition of topic from its log start to its end (committed only),
// control records included so that the end is always reached.
func chaosReadAll(t *testing.T, ctx context.Context, addr, topic string, offsets map[string][2]int64) map[int32][]chaosRecord {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	next := map[int32]int64{}
	for p := range int32(16) {
		if se, ok := offsets[fmt.Sprintf("%s-%d", topic, p)]; ok && se[1] > se[0] {
			parts[p] = kgo.NewOffset().At(se[0])
			want[p], next[p] = se[1], se[0]
		}
	}
	out := map[int32][]chaosRecord{}
	if len(parts) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	done := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("%s: read up to %v of %v", topic, next, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("%s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], chaosRecord{offset: r.Offset, key: string(r.Key), value: string(r.Value),
				control: r.Attrs.IsControl()})
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// check reads the three topics back and compares them with the ledger.
func (r *chaosRun) check(t *testing.T, ctx context.Context, offsets map[string][2]int64) {
	t.Helper()
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()

	seen := map[string]int{}
	checked, below := 0, 0
	read := chaosReadAll(t, ctx, r.addr, chaosTracked, offsets)
	at := map[int32]map[int64]string{}
	for p, recs := range read {
		at[p] = map[int64]string{}
		last := int64(-1)
		for _, rec := range recs {
			if rec.offset <= last {
				t.Errorf("%s-%d: offset %d after %d", chaosTracked, p, rec.offset, last)
			}
			last = rec.offset
			if rec.control {
				continue
			}
			at[p][rec.offset] = rec.value
			seen[rec.value]++
			if l.aborted[rec.value] {
				t.Errorf("%s-%d offset %d: aborted record %q read with read_committed", chaosTracked, p, rec.offset, rec.value)
			}
		}
	}
	for p, acked := range l.acked {
		se, ok := offsets[fmt.Sprintf("%s-%d", chaosTracked, p)]
		if !ok {
			t.Errorf("%s-%d: records acknowledged in a partition that is gone", chaosTracked, p)
			continue
		}
		missing := 0
		for off, v := range acked {
			if off < se[0] {
				below++
				continue // DeleteRecords or retention took it
			}
			checked++
			if got, ok := at[p][off]; !ok || got != v {
				if missing++; missing <= 5 {
					t.Errorf("%s-%d offset %d: acknowledged %q, read %q (present %v; log start %d, end %d)",
						chaosTracked, p, off, v, got, ok, se[0], se[1])
				}
			}
		}
		if missing > 5 {
			t.Errorf("%s-%d: %d acknowledged records missing in all", chaosTracked, p, missing)
		}
	}
	t.Logf("%s: %d acknowledged records read back at their offsets, %d below the log start", chaosTracked, checked, below)
	for v := range l.once {
		if seen[v] > 1 {
			t.Errorf("%s: idempotent or transactional record %q read %d times", chaosTracked, v, seen[v])
		}
	}

	values := map[string]bool{}
	for _, recs := range chaosReadAll(t, ctx, r.addr, chaosValues, offsets) {
		for _, rec := range recs {
			values[rec.value] = true
		}
	}
	missing := 0
	for v := range l.values {
		if !values[v] {
			if missing++; missing <= 5 {
				t.Errorf("%s: kafka-go record %q acknowledged, not read back", chaosValues, v)
			}
		}
	}

	byKey := map[string]chaosKeyed{} // a key stays in its partition
	for p, recs := range chaosReadAll(t, ctx, r.addr, chaosCompacted, offsets) {
		for _, rec := range recs {
			if !rec.control {
				byKey[rec.key] = chaosKeyed{partition: p, offset: rec.offset, value: rec.value}
			}
		}
	}
	for k, want := range l.newest {
		if want.offset < offsets[fmt.Sprintf("%s-%d", chaosCompacted, want.partition)][0] {
			continue // deleted by a raw DeleteRecords
		}
		if got, ok := byKey[k]; got != want {
			t.Errorf("%s key %q: newest acknowledged %q at %d-%d, read %q at %d-%d (present %v)", chaosCompacted, k,
				want.value, want.partition, want.offset, got.value, got.partition, got.offset, ok)
		}
	}
}

// kgoProducer produces to chaos-a (and sometimes to the scratch topics the admin creates
// and deletes) with franz-go.
func (r *chaosRun) kgoProducer(ctx context.Context, name string, idempotent bool, acks kgo.Acks, codec string) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		opts := []kgo.Opt{kgo.SeedBrokers(r.addr), kgo.RequiredAcks(acks), kgo.ProducerBatchCompression(kgoCodec(codec)),
			kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(5 * time.Second), kgo.ClientID("chaos-" + name),
			kgo.MetadataMaxAge(200 * time.Millisecond), kgo.MetadataMinAge(20 * time.Millisecond)}
		if !idempotent {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			r.fail("%s: %v", name, err)
			return
		}
		defer cl.Close()
		tracked := acks == kgo.AllISRAcks() || acks == kgo.LeaderAck()
		seq := 0
		for i := range r.ops {
			if i == r.ops/2 && name == "idem" {
				r.half.Store(true)
			}
			n := 1 + rng.IntN(40)
			recs := make([]*kgo.Record, n)
			topic := chaosTracked
			if rng.IntN(6) == 0 {
				topic = fmt.Sprintf("chaos-s%d", rng.IntN(3))
			}
			for i := range recs {
				recs[i] = &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%06d-%s", name, seq, strings.Repeat("x", rng.IntN(200)))}
				seq++
			}
			res := cl.ProduceSync(ctx, recs...)
			if topic != chaosTracked || !tracked {
				continue
			}
			for _, pr := range res {
				if pr.Err == nil {
					r.l.ack(pr.Record.Partition, pr.Record.Offset, string(pr.Record.Value), idempotent)
				}
			}
		}
	}
}

// txnProducer commits and aborts transactions on chaos-a.
func (r *chaosRun) txnProducer(ctx context.Context, id, codec string) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		newClient := func() *kgo.Client {
			cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.TransactionalID("chaos-"+id), kgo.DefaultProduceTopic(chaosTracked),
				kgo.ProducerBatchCompression(kgoCodec(codec)), kgo.TransactionTimeout(3*time.Second),
				kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProducerLinger(time.Millisecond),
				kgo.MetadataMinAge(20*time.Millisecond), kgo.UnknownTopicRetries(2))
			if err != nil {
				r.fail("%s: %v", id, err)
			}
			return cl
		}
		cl := newClient()
		if cl == nil {
			return
		}
		defer func() { cl.Close() }()
		seq := 0
		for range r.ops {
			if err := cl.BeginTransaction(); err != nil {
				cl.Close()
				if cl = newClient(); cl == nil {
					return
				}
				continue
			}
			n := 1 + rng.IntN(20)
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Value: fmt.Appendf(nil, "%s-%06d", id, seq)}
				seq++
			}
			if rng.IntN(4) == 0 { // a scratch topic in the transaction, deleted under it maybe
				recs = append(recs, &kgo.Record{Topic: fmt.Sprintf("chaos-s%d", rng.IntN(3)), Value: []byte("scratch")})
			}
			perr := cl.ProduceSync(ctx, recs...).FirstErr()
			commit := perr == nil && rng.IntN(3) != 0
			end := kgo.TryAbort
			if commit {
				end = kgo.TryCommit
			}
			if err := cl.EndTransaction(ctx, end); err != nil {
				// Outcome unknown: neither counted nor checked as aborted.
				cl.Close()
				if cl = newClient(); cl == nil {
					return
				}
				continue
			}
			recs = recs[:n] // the chaos-a ones
			r.l.mu.Lock()
			for _, rec := range recs {
				if !commit {
					r.l.aborted[string(rec.Value)] = true
				}
			}
			r.l.mu.Unlock()
			if commit {
				for _, rec := range recs {
					r.l.ack(rec.Partition, rec.Offset, string(rec.Value), true)
				}
			}
		}
	}
}

// compactProducer writes keyed records to the compacted topic.
func (r *chaosRun) compactProducer(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 13))
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.DefaultProduceTopic(chaosCompacted), kgo.ProducerLinger(time.Millisecond),
			kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		if err != nil {
			r.fail("compact producer: %v", err)
			return
		}
		defer cl.Close()
		seq := 0
		for range r.ops {
			recs := make([]*kgo.Record, 1+rng.IntN(30))
			for i := range recs {
				recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%02d", rng.IntN(20)), Value: fmt.Appendf(nil, "c-%06d", seq)}
				seq++
			}
			for _, pr := range cl.ProduceSync(ctx, recs...) {
				if pr.Err != nil {
					continue
				}
				rec := pr.Record
				r.l.mu.Lock()
				if old, ok := r.l.newest[string(rec.Key)]; !ok || old.offset < rec.Offset {
					r.l.newest[string(rec.Key)] = chaosKeyed{partition: rec.Partition, offset: rec.Offset, value: string(rec.Value)}
				}
				r.l.mu.Unlock()
			}
		}
	}
}

// saramaProducer is an idempotent sarama producer on chaos-a.
func (r *chaosRun) saramaProducer(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 17))
		cfg := saramaConfig("lz4")
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
		cfg.Producer.Retry.Max = 3
		cfg.Producer.Flush.Frequency = time.Millisecond
		cfg.Metadata.RefreshFrequency = 200 * time.Millisecond
		p, err := sarama.NewSyncProducer([]string{r.addr}, cfg)
		if err != nil {
			r.fail("sarama producer: %v", err)
			return
		}
		defer p.Close()
		seq := 0
		for range r.ops {
			msgs := make([]*sarama.ProducerMessage, 1+rng.IntN(20))
			for i := range msgs {
				msgs[i] = &sarama.ProducerMessage{Topic: chaosTracked, Value: sarama.StringEncoder(fmt.Sprintf("sarama-%06d", seq))}
				seq++
			}
			if err := p.SendMessages(msgs); err != nil {
				var perrs sarama.ProducerErrors
				if errors.As(err, &perrs) {
					failed := map[*sarama.ProducerMessage]bool{}
					for _, pe := range perrs {
						failed[pe.Msg] = true
					}
					for _, m := range msgs {
						if !failed[m] {
							r.l.ack(m.Partition, m.Offset, string(m.Value.(sarama.StringEncoder)), true)
						}
					}
				}
				continue
			}
			for _, m := range msgs {
				r.l.ack(m.Partition, m.Offset, string(m.Value.(sarama.StringEncoder)), true)
			}
		}
	}
}

// kafkaGoProducer writes to chaos-b with kafka-go (acks=all; no offsets returned, so its
// values are tracked).
func (r *chaosRun) kafkaGoProducer(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 19))
		tr := &kafka.Transport{MetadataTTL: 200 * time.Millisecond}
		defer tr.CloseIdleConnections()
		w := &kafka.Writer{Addr: kafka.TCP(r.addr), Topic: chaosValues, Balancer: &kafka.RoundRobin{}, Compression: kafka.Snappy,
			Transport: tr, RequiredAcks: kafka.RequireAll, BatchSize: 50, BatchTimeout: 2 * time.Millisecond}
		defer w.Close()
		seq := 0
		for range r.ops {
			msgs := make([]kafka.Message, 1+rng.IntN(30))
			for i := range msgs {
				msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "kafka-go-%06d", seq)}
				seq++
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := w.WriteMessages(wctx, msgs...)
			cancel()
			var werrs kafka.WriteErrors
			r.l.mu.Lock()
			for i, m := range msgs {
				if err == nil || (errors.As(err, &werrs) && werrs[i] == nil) {
					r.l.values[string(m.Value)] = true
				}
			}
			r.l.mu.Unlock()
		}
	}
}

// admin creates and deletes scratch topics, adds partitions, deletes records, alters
// configs, deletes groups and offsets, sets quotas, and runs retention and the cleaner.
func (r *chaosRun) admin(ctx context.Context, b *Broker) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 23))
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.RetryTimeout(2*time.Second))
		if err != nil {
			r.fail("admin: %v", err)
			return
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		scratch := func() string { return fmt.Sprintf("chaos-s%d", rng.IntN(3)) }
		for range r.ops * 2 {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			switch rng.IntN(14) {
			case 0:
				cfg := map[string]*string{}
				if rng.IntN(2) == 0 {
					c := "compact"
					cfg["cleanup.policy"] = &c
				}
				_, _ = adm.CreateTopic(actx, int32(1+rng.IntN(3)), 1, cfg, scratch())
			case 1:
				r.k848.deleteTopic(actx, adm, scratch())
			case 2:
				topic := scratch()
				if rng.IntN(3) == 0 {
					topic = chaosTracked
				}
				_, _ = adm.CreatePartitions(actx, 1, topic)
			case 3:
				// A few records past the log start: most acknowledged records stay to be checked.
				starts, err := adm.ListStartOffsets(actx, chaosTracked)
				if err != nil {
					break
				}
				var del kadm.Offsets
				starts.Each(func(o kadm.ListedOffset) {
					if o.Err == nil && rng.IntN(2) == 0 {
						del.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset + rng.Int64N(30)})
					}
				})
				_, _ = adm.DeleteRecords(actx, del) // past the end: OFFSET_OUT_OF_RANGE
			case 4:
				// A short retention.ms for one pass (what it deletes moves the log start, as
				// checked), then long again; only until the first producer is half done, so
				// that the records acknowledged after stay to be checked.
				v := []string{"50", "600000", "-1"}[rng.IntN(3)]
				if v == "50" && r.half.Load() {
					v = "-1"
				}
				_ = alterTopic(actx, adm, chaosTracked, "retention.ms", &v)
				if v == "50" {
					_, _ = b.EnforceRetention()
					v = "-1"
					_ = alterTopic(actx, adm, chaosTracked, "retention.ms", &v)
				}
			case 5:
				v := []string{"200", "1024", "8192", "1048576"}[rng.IntN(4)]
				topic := []string{chaosTracked, chaosValues, chaosCompacted, scratch()}[rng.IntN(4)]
				_ = alterTopic(actx, adm, topic, "segment.bytes", &v)
			case 6:
				v := []string{"compact", "delete", "compact,delete"}[rng.IntN(3)]
				_ = alterTopic(actx, adm, scratch(), "cleanup.policy", &v)
			case 7:
				_, _ = adm.DeleteGroups(actx, fmt.Sprintf("chaos-g%d", 1+rng.IntN(4)))
			case 8:
				g := fmt.Sprintf("chaos-g%d", 1+rng.IntN(4))
				_, _ = adm.DeleteOffsets(actx, g, kadm.TopicsSet{chaosTracked: {0: {}, 1: {}}, chaosValues: {0: {}}})
			case 9:
				// A group of its own that only commits: deleting it then succeeds.
				var offs kadm.Offsets
				offs.Add(kadm.Offset{Topic: chaosTracked, Partition: 0, At: rng.Int64N(100)})
				_, _ = adm.CommitOffsets(actx, "chaos-g4", offs)
			case 10:
				rate := float64(int64(1) << (10 + rng.IntN(12)))
				e := kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: ptr("chaos-plain-one")}},
					Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate, Remove: rng.IntN(2) == 0}}}
				_, _ = adm.AlterClientQuotas(actx, []kadm.AlterClientQuotaEntry{e})
			case 11:
				_, _ = b.EnforceRetention()
			case 12:
				_, _ = b.CompactLogs()
			case 13:
				_, _ = adm.DescribeGroups(actx)
				_, _ = adm.DescribeTopicConfigs(actx, chaosTracked, scratch())
				_, _ = adm.ListStartOffsets(actx, chaosTracked, chaosValues, scratch())
			}
			cancel()
		}
		// Quotas off again: the check reads at full speed.
		e := kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: ptr("chaos-plain-one")}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}}}
		_, _ = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{e})
	}
}

func ptr[T any](v T) *T { return &v }

// chaosConn is a raw connection for one goroutine: requests out, response frames in.
type chaosConn struct {
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

func dialChaos(addr string) (*chaosConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &chaosConn{nc: nc, r: bufio.NewReader(nc)}, nil
}

// roundTrip sends req and decodes its response into resp (nil: not decoded). An error
// means the connection is unusable (the broker may close it on a request it refuses).
func (c *chaosConn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	c.corr++
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(frameRequest(req, c.corr)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return fmt.Errorf("correlation id %d, want %d", corr, c.corr)
	}
	if resp == nil {
		return nil
	}
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:]
	}
	return resp.ReadFrom(body)
}

// rawRequests sends odd but decodable requests: unknown topics, negative partitions,
// huge max bytes, offsets past the end and before the start, odd timestamps, produces
// of unknown producers and acks.
func (r *chaosRun) rawRequests(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 29))
		var c *chaosConn
		defer func() {
			if c != nil {
				c.nc.Close()
			}
		}()
		topics := []string{chaosTracked, chaosValues, chaosCompacted, "chaos-s0", "chaos-unknown", "", "__consumer_offsets"}
		partition := func() int32 { return []int32{-1, 0, 1, 2, 5, 99, math.MaxInt32, math.MinInt32}[rng.IntN(8)] }
		offset := func() int64 {
			return []int64{-1, -2, -5, 0, 1, 7, 1 << 20, math.MaxInt64, math.MinInt64}[rng.IntN(9)]
		}
		for range r.ops * 4 {
			if ctx.Err() != nil {
				return
			}
			if c == nil {
				var err error
				if c, err = dialChaos(r.addr); err != nil {
					r.fail("raw: dial: %v", err)
					return
				}
			}
			var req kmsg.Request
			switch rng.IntN(8) {
			case 0, 1:
				f := fetchReq(topics[rng.IntN(len(topics))], partition(), offset(), int32(rng.IntN(50)))
				f.MaxBytes = []int32{0, 1, math.MaxInt32, -1}[rng.IntN(4)]
				f.Topics[0].Partitions[0].PartitionMaxBytes = []int32{0, 1, math.MaxInt32, -1}[rng.IntN(4)]
				f.Topics[0].Partitions[0].LogStartOffset = offset()
				f.IsolationLevel = int8(rng.IntN(3))
				f.SessionID, f.SessionEpoch = []int32{0, 0, 1, -1, rng.Int32()}[rng.IntN(5)], []int32{-1, 0, 1, 5, math.MaxInt32}[rng.IntN(5)]
				if rng.IntN(3) == 0 {
					f.Topics = append(f.Topics, f.Topics[0])
				}
				req = f
			case 2:
				lo := kmsg.NewPtrListOffsetsRequest()
				lo.Version = int16(rng.IntN(9))
				lo.IsolationLevel = int8(rng.IntN(2))
				lt := kmsg.NewListOffsetsRequestTopic()
				lt.Topic = topics[rng.IntN(len(topics))]
				lp := kmsg.NewListOffsetsRequestTopicPartition()
				lp.Partition, lp.Timestamp, lp.MaxNumOffsets = partition(), []int64{-1, -2, -3, -4, -5, 0, time.Now().UnixMilli(), math.MaxInt64}[rng.IntN(8)], 1
				lp.CurrentLeaderEpoch = int32(rng.IntN(3)) - 1
				lt.Partitions = append(lt.Partitions, lp, lp)
				lo.Topics = append(lo.Topics, lt)
				req = lo
			case 3:
				m := metadataReq(int16(rng.IntN(13)), topics[rng.IntN(len(topics))], "chaos-unknown-"+strconv.Itoa(rng.IntN(3)))
				m.AllowAutoTopicCreation = false
				req = m
			case 4:
				oc := kmsg.NewPtrOffsetCommitRequest()
				oc.Version, oc.Group, oc.Generation, oc.MemberID = 8, fmt.Sprintf("chaos-g%d", rng.IntN(5)), int32(rng.IntN(5))-1, "nobody"
				ot := kmsg.NewOffsetCommitRequestTopic()
				ot.Topic = topics[rng.IntN(len(topics))]
				op := kmsg.NewOffsetCommitRequestTopicPartition()
				op.Partition, op.Offset = partition(), offset()
				ot.Partitions = append(ot.Partitions, op)
				oc.Topics = append(oc.Topics, ot)
				req = oc
			case 5:
				dr := kmsg.NewPtrDeleteRecordsRequest()
				dr.Version, dr.TimeoutMillis = 2, 1000
				dt := kmsg.NewDeleteRecordsRequestTopic()
				dt.Topic = []string{"chaos-unknown", "chaos-s1", chaosCompacted, "__consumer_offsets"}[rng.IntN(4)]
				dp := kmsg.NewDeleteRecordsRequestTopicPartition()
				dp.Partition, dp.Offset = partition(), offset()
				dt.Partitions = append(dt.Partitions, dp)
				dr.Topics = append(dr.Topics, dt)
				req = dr
			case 6:
				ep := kmsg.NewPtrEndTxnRequest()
				ep.Version, ep.TransactionalID, ep.ProducerID, ep.ProducerEpoch, ep.Commit = 3, "chaos-txn-nobody", rng.Int64N(1000), int16(rng.IntN(3)), rng.IntN(2) == 0
				req = ep
			case 7:
				// Odd produces: unknown topics, bad partitions, no records, and (to the
				// scratch topics only: an unknown transaction would hold the checked topics'
				// last stable offset) transactional or idempotent batches of unknown
				// producers.
				records := batch(1+rng.IntN(5), time.Now().UnixMilli(), []byte("raw"))
				topic := topics[rng.IntN(len(topics))]
				switch rng.IntN(4) {
				case 0:
					records = nil
				case 1:
					topic = []string{"chaos-s0", "chaos-s1", "chaos-s2"}[rng.IntN(3)]
					records = txnBatch(rng.Int64N(1000), int16(rng.IntN(3)), int32(rng.IntN(5)))
					if rng.IntN(2) == 0 {
						records[22] &^= 0x10 // idempotent only
						binary.BigEndian.PutUint32(records[17:], crc32.Checksum(records[21:], crc32.MakeTable(crc32.Castagnoli)))
					}
				}
				pr := produceReq([]int16{-1, 1, 0, 5}[rng.IntN(4)], topic, partition(), records)
				if pr.Acks == 0 {
					_, _ = c.nc.Write(frameRequest(pr, 0)) // no response
					continue
				}
				req = pr
			}
			if err := c.roundTrip(req, nil); err != nil {
				c.nc.Close()
				c = nil
			}
		}
	}
}

// rawSessions opens fetch sessions (KIP-227) on two connections and plays them against
// each other: right and wrong epochs, the other connection's session id, forgotten
// partitions never added, sessions closed and reopened, partitions of topics deleted and
// created again while in a session.
func (r *chaosRun) rawSessions(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 31))
		var conns [2]*chaosConn
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.nc.Close()
				}
			}
		}()
		type session struct{ id, epoch int32 }
		var sessions []session
		for range r.ops * 4 {
			if ctx.Err() != nil {
				return
			}
			i := rng.IntN(2)
			if conns[i] == nil {
				var err error
				if conns[i], err = dialChaos(r.addr); err != nil {
					r.fail("sessions: dial: %v", err)
					return
				}
			}
			parts := map[int32]int64{}
			for p := range int32(3) {
				if rng.IntN(2) == 0 {
					parts[p] = []int64{0, 3, 1 << 30, -1}[rng.IntN(4)]
				}
			}
			var forget []int32
			if rng.IntN(3) == 0 {
				forget = []int32{int32(rng.IntN(4))}
			}
			var id, epoch int32
			var cur int
			switch {
			case len(sessions) == 0 || rng.IntN(4) == 0:
				id, epoch = 0, 0 // open a new one
			default:
				cur = rng.IntN(len(sessions))
				s := sessions[cur]
				id, epoch = s.id, s.epoch
				switch rng.IntN(5) {
				case 0:
					epoch += int32(rng.IntN(3)) - 1 // maybe wrong
				case 1:
					epoch = -1 // close it
				}
			}
			// Sometimes a scratch topic, which the admin deletes and creates under the session.
			topic := []string{chaosTracked, chaosTracked, "chaos-s0", "chaos-s2"}[rng.IntN(4)]
			req := sessionFetch(id, epoch, topic, parts, forget, int32(rng.IntN(30)))
			resp := &kmsg.FetchResponse{Version: req.Version}
			if err := conns[i].roundTrip(req, resp); err != nil {
				conns[i].nc.Close()
				conns[i] = nil
				continue
			}
			switch {
			case resp.ErrorCode != 0:
			case id == 0 && resp.SessionID != 0:
				sessions = append(sessions, session{resp.SessionID, 1})
			case id != 0 && epoch == -1:
				sessions = append(sessions[:cur], sessions[cur+1:]...)
			case id != 0:
				sessions[cur].epoch = epoch + 1
			}
		}
	}
}

// kgoDirectConsumer reads chaos-a without a group (fetch sessions on) and checks that
// each partition's offsets only grow.
func (r *chaosRun) kgoDirectConsumer(ctx context.Context) func(<-chan struct{}) {
	return func(stop <-chan struct{}) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.ConsumeTopics(chaosTracked, chaosCompacted),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond),
			kgo.MetadataMaxAge(200*time.Millisecond), kgo.MetadataMinAge(20*time.Millisecond), kgo.FetchMaxBytes(64<<10))
		if err != nil {
			r.fail("direct consumer: %v", err)
			return
		}
		defer cl.Close()
		last := map[string]int64{}
		pollUntil(ctx, cl, stop, func(rec *kgo.Record) {
			k := fmt.Sprintf("%s-%d", rec.Topic, rec.Partition)
			if prev, ok := last[k]; ok && rec.Offset <= prev {
				r.fail("direct consumer: %s offset %d after %d", k, rec.Offset, prev)
			}
			last[k] = rec.Offset
		})
	}
}

func pollUntil(ctx context.Context, cl *kgo.Client, stop <-chan struct{}, each func(*kgo.Record)) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-pctx.Done():
		}
		cancel()
	}()
	for pctx.Err() == nil {
		fs := cl.PollFetches(pctx)
		fs.EachRecord(each)
	}
}

// kgoGroupConsumer is a franz-go group member (chaos-g1) on chaos-a and chaos-b.
func (r *chaosRun) kgoGroupConsumer(ctx context.Context) func(<-chan struct{}) {
	return func(stop <-chan struct{}) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.ConsumerGroup("chaos-g1"), kgo.ConsumeTopics(chaosTracked, chaosValues),
			kgo.FetchMaxWait(50*time.Millisecond), kgo.AutoCommitInterval(100*time.Millisecond),
			kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(200*time.Millisecond), kgo.MetadataMaxAge(200*time.Millisecond), kgo.MetadataMinAge(20*time.Millisecond))
		if err != nil {
			r.fail("group consumer: %v", err)
			return
		}
		defer cl.Close()
		pollUntil(ctx, cl, stop, func(*kgo.Record) {})
	}
}

// kafkaGoGroupConsumer is a kafka-go group member (chaos-g2) on chaos-b.
func (r *chaosRun) kafkaGoGroupConsumer() func(<-chan struct{}) {
	return func(stop <-chan struct{}) {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{r.addr}, GroupID: "chaos-g2", Topic: chaosValues,
			StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond, SessionTimeout: 2 * time.Second,
			HeartbeatInterval: 200 * time.Millisecond, RebalanceTimeout: 2 * time.Second, JoinGroupBackoff: 100 * time.Millisecond,
			CommitInterval: 100 * time.Millisecond})
		defer rd.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-stop; cancel() }()
		for ctx.Err() == nil {
			if _, err := rd.ReadMessage(ctx); err != nil && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// saramaGroupConsumer is a sarama group member (chaos-g3) on chaos-a.
func (r *chaosRun) saramaGroupConsumer() func(<-chan struct{}) {
	return func(stop <-chan struct{}) {
		cfg := saramaConfig("none")
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
		cfg.Consumer.Group.Session.Timeout = 2 * time.Second
		cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
		cfg.Metadata.RefreshFrequency = 200 * time.Millisecond
		cg, err := sarama.NewConsumerGroup([]string{r.addr}, "chaos-g3", cfg)
		if err != nil {
			r.fail("sarama group: %v", err)
			return
		}
		defer cg.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-stop; cancel() }()
		h := saramaHandler{got: func(int32, []byte) {}}
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{chaosTracked}, h); err != nil && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}
