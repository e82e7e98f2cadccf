package pipeline

// TestChaos runs the events pipeline against the built-in broker while everything happens
// at once, under one seed: producers of several kinds (franz-go idempotent and not,
// transactions committed and aborted, kafka-go; keyed and not; every codec; some lines
// malformed) write to three topics; an admin adds partitions, deletes records, shrinks
// retention so segments go, deletes and recreates a topic, compacts, and stops and
// restarts the broker on the same dir and port; the engine is stopped and restarted on
// the same checkpoint and warehouse, and killed (kill -9 of a child process). After a
// drain with everything up it checks what must hold whatever happened in between: every
// record still in the log was written to ods_events exactly once; no record was written
// twice; none of an aborted transaction was; a committed record missing from ods_events
// was deleted, and its loss reported (the engine stopped with a DataLoss error while
// fail_on_data_loss was true, or logged it after); dwd_events holds each event id once,
// dlq_events each malformed line once; no window was emitted twice; the consumer group's
// offsets equal the checkpoint's; no goroutine is left after Stop.
// TAGPIPE_CHAOS_OPS scales the operation counts up for long runs, TAGPIPE_CHAOS_SEED
// varies the choices (as broker's TestChaos).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	kgocompress "github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/broker"
	"github.com/tagpipe/tagpipe/internal/chaosenv"
	"github.com/tagpipe/tagpipe/streaming"
)

const (
	chaosA = "chaos-a" // records deleted (DeleteRecords, retention), partitions added
	chaosB = "chaos-b" // deleted and recreated
	chaosC = "chaos-c" // compacted

	chaosChildEnv = "TAGPIPE_PIPELINE_CHAOS_CHILD"
	chaosGroup    = "chaos-stream"
)

var chaosTopics = []string{chaosA, chaosB, chaosC}

// chaosEngineOptions are the engine's options in the test and in its kill -9 child.
// With pattern the topics are subscribed by name pattern (Spark's subscribePattern): a
// deleted topic is then no topic of the job until it is back.
func chaosEngineOptions(addr, cp string, fail, pattern bool, log *slog.Logger, ev *Events) streaming.Options {
	o := streaming.DefaultOptions()
	o.Brokers, o.Topics, o.CheckpointDir = []string{addr}, chaosTopics, cp
	if pattern {
		o.Topics, o.TopicPattern = nil, regexp.MustCompile(`chaos-[abc]`)
	}
	o.MaxRecordsPerPartition = 200
	o.RetryBackoff = 20 * time.Millisecond
	o.IsolationLevel = "read_committed"
	o.FailOnDataLoss = fail
	o.Group = chaosGroup
	o.Logger = log
	o.Resume = ev.Resume
	return o
}

func chaosPipelineOptions() Options {
	po := DefaultOptions()
	po.Interval = 25 * time.Millisecond
	return po
}

// TestChaosChild is the engine process TestChaos kills.
func TestChaosChild(t *testing.T) {
	if os.Getenv(chaosChildEnv) == "" {
		t.Skip("only runs as the child of TestChaos")
	}
	env := func(k string) string { return os.Getenv(chaosChildEnv + "_" + k) }
	logf, err := os.OpenFile(env("LOG"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(env("SELFKILL")); n > 0 {
		// Die right after the n-th table commit: between two tables of one batch, or
		// after the last before the checkpoint's commit.
		left := n
		var mu sync.Mutex // tables commit in parallel
		afterCommit = func(table string, batch int64) {
			mu.Lock()
			defer mu.Unlock()
			if left--; left == 0 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	wh := openWarehouse(t, env("WH"))
	po := chaosPipelineOptions()
	po.Warehouse = wh
	ev, err := NewEvents(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := streaming.New(ev.Job, chaosEngineOptions(env("BROKER"), env("CP"), env("FAIL") == "1", env("PATTERN") == "1", log, ev))
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(context.Background())
	var d streaming.DataLoss
	if errors.As(err, &d) {
		b, _ := json.Marshal(d)
		if werr := os.WriteFile(env("LOSS"), b, 0o644); werr != nil {
			t.Fatal(werr)
		}
	}
	t.Fatalf("engine stopped: %v", err)
}

// chaosRec is one produced value.
type chaosRec struct {
	topic     string
	inc       int // incarnation of chaos-b when produced (0 for the others)
	partition int32
	offset    int64 // -1: unknown (kafka-go)
	key       string
	json      bool // a JSON line with an event id
	bad       bool // does not parse
	acked     bool
	aborted   bool
	by        string // producer
	once      bool   // idempotent or transactional: written once whatever the retries
}

// chaosReport is one data-loss report: a DataLoss error or a warning logged for one.
type chaosReport struct {
	tp            streaming.TopicPartition
	from, until   int64
	deleted       bool
	prevID, newID string
	fromErr       bool
}

type chaosRun struct {
	t    *testing.T
	ctx  context.Context
	seed uint64
	ops  int
	dir  string // broker data dir
	addr string
	cp   string
	wh   string
	// pattern: the engine subscribes to the topics by pattern, not by name.
	pattern bool
	// lossless: the admin only adds partitions and restarts the broker: every table
	// and every window must then be exact.
	lossless bool

	bmu sync.Mutex // the broker, restarted by the admin
	b   *broker.Broker

	// recreate is held (write) while chaos-b is deleted and recreated, (read) while a
	// record is produced to it and acknowledged, so its incarnation is known.
	recreate sync.RWMutex
	incs     []string    // topic ids of chaos-b's incarnations
	holdB    atomic.Bool // no produce to chaos-b until the engine committed a plan with its new id

	mu      sync.Mutex
	recs    map[string]*chaosRec // by value (values are unique)
	reports []chaosReport
	fail    bool // the engine's fail_on_data_loss now
	errs    []string

	seq       atomic.Int64
	logMu     sync.Mutex
	logBuf    bytes.Buffer // in-process engines' warnings (JSON lines)
	childLog  string
	kills     int
	selfKills int
	stops     int
	ended     []string // how engine runs ended
}

func (r *chaosRun) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *chaosRun) Write(p []byte) (int, error) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logBuf.Write(p)
}

func (r *chaosRun) startBroker(listen string) *broker.Broker {
	o := broker.DefaultOptions()
	o.Dir, o.Listen = r.dir, listen
	o.RetentionCheckInterval, o.CleanerBackoff = -1, -1
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return b
}

// value makes the next line: a JSON event with an id, a Taobao line, or a malformed one.
func (r *chaosRun) value(rng *rand.Rand) (v string, json, bad bool) {
	n := r.seq.Add(1)
	// Event times move forward with the sequence, some late: windows close as it goes.
	ts := int64(1767225600) + n/4 - int64(rng.IntN(90))
	actions := []string{"pv", "fav", "cart", "buy"}
	switch rng.IntN(10) {
	case 0:
		return fmt.Sprintf(`{"event_id":"x%d","user_id":`, n), false, true
	case 1:
		return fmt.Sprintf("garbage line %d", n), false, true
	case 2, 3, 4:
		return fmt.Sprintf("%d,%d,%d,%s,%d", n%50, n, n%7, actions[n%4], ts), false, false
	}
	return fmt.Sprintf(`{"event_id":"x%d","user_id":"u%d","item_id":"i%d","action":"%s","ts":%d,"category":"c%d"}`, n, n%50, n, actions[n%4], ts, n%5), true, false
}

func (r *chaosRun) note(by string, once bool, topic string, inc int, v, key string, json, bad bool) *chaosRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &chaosRec{topic: topic, inc: inc, offset: -1, key: key, json: json, bad: bad, by: by, once: once}
	r.recs[v] = c
	return c
}

func (r *chaosRun) ack(v string, p int32, off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.recs[v]
	c.partition, c.offset, c.acked = p, off, true
}

// bTopic picks chaos-a or, unless held, chaos-b, and takes the recreate read lock for
// chaos-b (release calls).
func (r *chaosRun) pickTopic(rng *rand.Rand) (topic string, inc int, release func()) {
	if rng.IntN(3) == 0 && !r.holdB.Load() {
		r.recreate.RLock()
		if !r.holdB.Load() {
			return chaosB, len(r.incs) - 1, r.recreate.RUnlock
		}
		r.recreate.RUnlock()
	}
	return chaosA, 0, func() {}
}

var chaosKgoCodecs = []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}

// kgoProducer writes batches with franz-go (idempotent or not), keyed or not.
func (r *chaosRun) kgoProducer(name string, idempotent bool, codec kgo.CompressionCodec) {
	rng := rand.New(rand.NewPCG(r.seed, uint64(len(name))*31+7))
	opts := []kgo.Opt{kgo.SeedBrokers(r.addr), kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordDeliveryTimeout(5 * time.Second), kgo.ClientID("chaos-" + name),
		kgo.MetadataMaxAge(200 * time.Millisecond), kgo.MetadataMinAge(20 * time.Millisecond), kgo.UnknownTopicRetries(3)}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		r.failf("%s: %v", name, err)
		return
	}
	defer cl.Close()
	for range r.ops {
		topic, inc, release := r.pickTopic(rng)
		keyed := rng.IntN(2) == 0
		recs := make([]*kgo.Record, 1+rng.IntN(40))
		for i := range recs {
			v, js, bad := r.value(rng)
			var key []byte
			if keyed {
				key = fmt.Appendf(nil, "k%d", rng.IntN(30))
			}
			r.note(name, idempotent, topic, inc, v, string(key), js, bad)
			recs[i] = &kgo.Record{Topic: topic, Key: key, Value: []byte(v)}
		}
		for _, pr := range cl.ProduceSync(r.ctx, recs...) {
			if pr.Err == nil {
				r.ack(string(pr.Record.Value), pr.Record.Partition, pr.Record.Offset)
			}
		}
		release()
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
}

// txnProducer commits and aborts transactions over chaos-a and chaos-b.
func (r *chaosRun) txnProducer(name string, codec kgo.CompressionCodec) {
	rng := rand.New(rand.NewPCG(r.seed, 11))
	newClient := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.TransactionalID("chaos-"+name),
			kgo.ProducerBatchCompression(codec), kgo.TransactionTimeout(3*time.Second),
			kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProducerLinger(time.Millisecond),
			kgo.MetadataMinAge(20*time.Millisecond), kgo.UnknownTopicRetries(3))
		if err != nil {
			r.failf("%s: %v", name, err)
		}
		return cl
	}
	cl := newClient()
	if cl == nil {
		return
	}
	defer func() { cl.Close() }()
	for range r.ops {
		topic, inc, release := r.pickTopic(rng)
		if err := cl.BeginTransaction(); err != nil {
			release()
			cl.Close()
			if cl = newClient(); cl == nil {
				return
			}
			continue
		}
		recs := make([]*kgo.Record, 1+rng.IntN(20))
		for i := range recs {
			v, js, bad := r.value(rng)
			r.note(name, true, topic, inc, v, "", js, bad)
			recs[i] = &kgo.Record{Topic: topic, Value: []byte(v)}
		}
		perr := cl.ProduceSync(r.ctx, recs...).FirstErr()
		commit := perr == nil && rng.IntN(3) != 0
		end := kgo.TryAbort
		if commit {
			end = kgo.TryCommit
		}
		err := cl.EndTransaction(r.ctx, end)
		release()
		if err != nil {
			// Outcome unknown: the records may or may not be visible. The next client
			// (same transactional id) fences and aborts what is open.
			cl.Close()
			if cl = newClient(); cl == nil {
				return
			}
			continue
		}
		for _, rec := range recs {
			if commit {
				r.ack(string(rec.Value), rec.Partition, rec.Offset)
			} else {
				r.mu.Lock()
				r.recs[string(rec.Value)].aborted = true
				r.mu.Unlock()
			}
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
}

// kafkagoProducer writes to chaos-a with segmentio/kafka-go (no offsets come back).
func (r *chaosRun) kafkagoProducer(codec kgocompress.Compression) {
	rng := rand.New(rand.NewPCG(r.seed, 13))
	tr := &kafka.Transport{}
	w := &kafka.Writer{Addr: kafka.TCP(r.addr), Topic: chaosA, Balancer: &kafka.Hash{}, Compression: codec, Transport: tr,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, MaxAttempts: 3, WriteBackoffMax: 50 * time.Millisecond}
	defer tr.CloseIdleConnections()
	defer w.Close()
	for range r.ops {
		msgs := make([]kafka.Message, 1+rng.IntN(20))
		for i := range msgs {
			v, js, bad := r.value(rng)
			key := fmt.Sprintf("g%d", rng.IntN(30))
			r.note("kafka-go", false, chaosA, 0, v, key, js, bad)
			msgs[i] = kafka.Message{Key: []byte(key), Value: []byte(v)}
		}
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		err := w.WriteMessages(ctx, msgs...)
		cancel()
		if err == nil {
			r.mu.Lock()
			for _, m := range msgs {
				r.recs[string(m.Value)].acked = true
			}
			r.mu.Unlock()
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
}

// compactProducer writes keyed records to the compacted topic.
func (r *chaosRun) compactProducer() {
	rng := rand.New(rand.NewPCG(r.seed, 17))
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.DefaultProduceTopic(chaosC), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(chaosKgoCodecs[rng.IntN(len(chaosKgoCodecs))]), kgo.RecordDeliveryTimeout(5*time.Second))
	if err != nil {
		r.failf("compact producer: %v", err)
		return
	}
	defer cl.Close()
	for range r.ops {
		recs := make([]*kgo.Record, 1+rng.IntN(20))
		for i := range recs {
			v, js, bad := r.value(rng)
			key := fmt.Sprintf("c%02d", rng.IntN(12))
			r.note("compact", true, chaosC, 0, v, key, js, bad)
			recs[i] = &kgo.Record{Key: []byte(key), Value: []byte(v)}
		}
		for _, pr := range cl.ProduceSync(r.ctx, recs...) {
			if pr.Err == nil {
				r.ack(string(pr.Record.Value), pr.Record.Partition, pr.Record.Offset)
			}
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
}

// createTopics makes the three topics (chaos-b again when recreated) and returns the
// topic id of chaos-b, as the engine writes it (URL-safe base64, no padding).
func (r *chaosRun) createTopic(adm *kadm.Client, topic string) (string, error) {
	configs := map[string]*string{}
	set := func(k, v string) { configs[k] = &v }
	partitions := int32(2)
	switch topic {
	case chaosA:
		partitions = 3
		set("segment.bytes", "2048")
	case chaosC:
		partitions = 1
		set("cleanup.policy", "compact")
		set("segment.bytes", "1024")
		set("min.cleanable.dirty.ratio", "0.01")
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	res, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(res.ID[:]), nil
}

// admin runs the topic and broker operations.
func (r *chaosRun) admin() {
	rng := rand.New(rand.NewPCG(r.seed, 19))
	adm, closeAdm := r.adminClient()
	defer func() { closeAdm() }()
	restarts := 0
	// Records deleted before the engine's first plan are before its start offsets
	// (earliest): not lost. Wait for that plan's batch to commit.
	for i := 0; ; i++ {
		if _, ok, _ := streaming.ReadProgress(r.cp); ok {
			break
		}
		if i == 3000 {
			r.failf("admin: no batch committed in 60 s")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range r.ops {
		time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		op := rng.IntN(7)
		if r.lossless && op >= 1 && op <= 4 {
			op = 0 // nothing removes records: partitions and restarts only
		}
		switch op {
		case 0: // add a partition (up to 6)
			if md, err := adm.ListTopics(ctx, chaosA); err == nil && len(md[chaosA].Partitions) < 6 {
				adm.CreatePartitions(ctx, 1, chaosA)
			}
		case 1: // DeleteRecords on chaos-a, below its end
			ends, err := adm.ListEndOffsets(ctx, chaosA)
			if err != nil {
				break
			}
			os := kadm.Offsets{}
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err == nil && o.Offset > 0 && rng.IntN(2) == 0 {
					os.Add(kadm.Offset{Topic: chaosA, Partition: o.Partition, At: rng.Int64N(o.Offset + 1), LeaderEpoch: -1})
				}
			})
			adm.DeleteRecords(ctx, os)
		case 2: // retention: keep a few segments' bytes, let the broker drop the rest
			small := strconv.Itoa(2048 * (1 + rng.IntN(3)))
			if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: &small}}, chaosA); err == nil {
				r.bmu.Lock()
				r.b.EnforceRetention()
				r.bmu.Unlock()
				adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.bytes"}}, chaosA)
			}
		case 3: // delete chaos-b and create it again
			r.recreate.Lock()
			if _, err := adm.DeleteTopic(ctx, chaosB); err == nil {
				for i := 0; ; i++ {
					id, err := r.createTopic(adm, chaosB)
					if err == nil {
						r.incs = append(r.incs, id)
						r.holdB.Store(true)
						break
					}
					if i == 50 {
						r.failf("cannot recreate %s: %v", chaosB, err)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			r.recreate.Unlock()
		case 4: // compact
			r.bmu.Lock()
			r.b.CompactLogs()
			r.bmu.Unlock()
		case 5, 6: // stop the broker and start it again on its dir and port
			if restarts >= 1+r.ops/8 {
				break
			}
			restarts++
			r.bmu.Lock()
			if err := r.b.Stop(context.Background()); err != nil {
				r.failf("broker stop: %v", err)
			}
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			r.b = r.startBroker(r.addr)
			r.bmu.Unlock()
		}
		cancel()
	}
}

func (r *chaosRun) adminClient() (*kadm.Client, func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.MetadataMinAge(10*time.Millisecond), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		r.t.Fatal(err)
	}
	return kadm.NewClient(cl), cl.Close
}

// releaseHold lets producers write to chaos-b again once the engine committed a batch
// planned with its newest topic id: a batch planned before the recreation and read after
// it would read the new topic's records once in the old range and again from its start
// (README: a documented duplicate with fail_on_data_loss false), which is not what this
// test is after.
func (r *chaosRun) releaseHold() {
	if !r.holdB.Load() {
		return
	}
	p, ok, err := streaming.ReadProgress(r.cp)
	if err != nil || !ok {
		return
	}
	b, err := os.ReadFile(filepath.Join(r.cp, "offsets", strconv.FormatInt(p.LastBatch, 10)))
	if err != nil {
		return
	}
	var pl struct {
		TopicIDs map[string]string `json:"topic_ids"`
	}
	if json.Unmarshal(b, &pl) != nil {
		return
	}
	r.recreate.RLock()
	defer r.recreate.RUnlock()
	if pl.TopicIDs[chaosB] == r.incs[len(r.incs)-1] {
		r.holdB.Store(false)
	}
}

// lossReported records a DataLoss error that stopped an engine: from now on the operator
// runs with fail_on_data_loss false, as the error tells.
func (r *chaosRun) lossReported(d streaming.DataLoss, how string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fail {
		r.errs = append(r.errs, fmt.Sprintf("%s: engine stopped with a DataLoss error though fail_on_data_loss was false: %v", how, d))
	}
	r.reports = append(r.reports, chaosReport{tp: d.TopicPartition, from: d.From, until: d.Until, deleted: d.Deleted,
		prevID: d.PrevTopicID, newID: d.TopicID, fromErr: true})
	r.fail = false
	r.ended = append(r.ended, how+": data loss")
}

func (r *chaosRun) failOnDataLoss() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fail
}

// runInProcess runs the engine in this process for a while and stops it gracefully.
func (r *chaosRun) runInProcess(rng *rand.Rand, stopAfter time.Duration) {
	wh := openWarehouse(r.t, r.wh)
	defer wh.Close()
	po := chaosPipelineOptions()
	po.Warehouse = wh
	ev, err := NewEvents(r.ctx, po)
	if err != nil {
		r.failf("events: %v", err)
		return
	}
	defer ev.Close()
	log := slog.New(slog.NewJSONHandler(r, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := streaming.New(ev.Job, chaosEngineOptions(r.addr, r.cp, r.failOnDataLoss(), r.pattern, log, ev))
	if err != nil {
		r.failf("engine: %v", err)
		return
	}
	if err := e.Start(r.ctx); err != nil {
		r.failf("engine start: %v", err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stop := time.After(stopAfter)
wait:
	for {
		select {
		case <-tick.C:
			r.releaseHold()
		case <-stop:
			break wait
		case <-e.Done():
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	err = e.Stop(ctx)
	var d streaming.DataLoss
	switch {
	case errors.As(err, &d):
		r.lossReported(d, "in-process engine")
	case err != nil:
		r.failf("in-process engine stopped: %v", err)
	default:
		r.mu.Lock()
		r.stops++
		r.ended = append(r.ended, "stopped")
		r.mu.Unlock()
	}
}

// runChild runs the engine in a child process and kills it (kill -9) after a while,
// unless it stops by itself first (a DataLoss error with fail_on_data_loss).
func (r *chaosRun) runChild(n int, killAfter time.Duration, selfKill int) {
	loss := filepath.Join(r.t.TempDir(), "loss.json")
	fail, pattern := "0", "0"
	if r.failOnDataLoss() {
		fail = "1"
	}
	if r.pattern {
		pattern = "1"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChaosChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), chaosChildEnv+"=1", chaosChildEnv+"_BROKER="+r.addr, chaosChildEnv+"_CP="+r.cp,
		chaosChildEnv+"_WH="+r.wh, chaosChildEnv+"_LOG="+r.childLog, chaosChildEnv+"_LOSS="+loss, chaosChildEnv+"_FAIL="+fail, chaosChildEnv+"_PATTERN="+pattern, chaosChildEnv+"_SELFKILL="+strconv.Itoa(selfKill))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.failf("child: %v", err)
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	kill := time.After(killAfter)
	for {
		select {
		case <-tick.C:
			r.releaseHold()
			continue
		case <-kill:
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			r.mu.Lock()
			r.kills++
			r.ended = append(r.ended, "killed")
			r.mu.Unlock()
		case err := <-exited:
			if ee, ok := err.(*exec.ExitError); ok && selfKill > 0 && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				r.mu.Lock()
				r.kills++
				r.selfKills++
				r.ended = append(r.ended, "killed after a table commit")
				r.mu.Unlock()
				return
			}
			b, rerr := os.ReadFile(loss)
			if rerr != nil {
				r.failf("child %d exited by itself (%v) without a data-loss report:\n%s", n, err, out.String())
				return
			}
			var d streaming.DataLoss
			if err := json.Unmarshal(b, &d); err != nil {
				r.failf("child %d: %v", n, err)
				return
			}
			r.lossReported(d, "child engine")
		}
		return
	}
}

// engines stops, restarts and kills the engine until done is closed.
func (r *chaosRun) engines(done <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.seed, 23))
	maxKills := 1 + r.ops/8
	for n := 0; ; n++ {
		select {
		case <-done:
			return
		default:
		}
		d := time.Duration(100+rng.IntN(500)) * time.Millisecond
		if r.kills < maxKills && rng.IntN(2) == 0 {
			selfKill := 0
			if rng.IntN(2) == 0 {
				selfKill = 1 + rng.IntN(5) // 5 tables a batch
			}
			if selfKill > 0 {
				d = 5 * time.Second // time to die by itself
			}
			r.runChild(n, d+300*time.Millisecond, selfKill) // the child starts slower
		} else {
			r.runInProcess(rng, d)
		}
	}
}

// drain runs the engine with everything up until it has read every topic to its end,
// stops it and checks that it left no goroutine behind.
func (r *chaosRun) drain() {
	t := r.t
	adm, closeAdm := r.adminClient()
	ctx, cancel := context.WithTimeout(r.ctx, 60*time.Second)
	defer cancel()
	// Open transactions (an EndTransaction lost in a broker restart) end by timeout.
	var ends kadm.ListedOffsets
	for {
		lso, err1 := adm.ListCommittedOffsets(ctx, chaosTopics...)
		hwm, err2 := adm.ListEndOffsets(ctx, chaosTopics...)
		if err := errors.Join(err1, err2, lso.Error(), hwm.Error()); err != nil {
			t.Fatalf("cannot list offsets: %v", err)
		}
		same := true
		hwm.Each(func(o kadm.ListedOffset) {
			if l, _ := lso.Lookup(o.Topic, o.Partition); l.Offset != o.Offset {
				same = false
			}
		})
		if same {
			ends = hwm
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("transactions still open: %v vs %v", lso, hwm)
		case <-time.After(100 * time.Millisecond):
		}
	}
	starts, err := adm.ListStartOffsets(ctx, chaosTopics...)
	if err != nil {
		t.Fatal(err)
	}
	closeAdm()
	ignore := goleak.IgnoreCurrent()
	for attempt := 0; ; attempt++ {
		if attempt == 4 {
			t.Fatal("the drain's engine kept stopping with data loss")
		}
		wh := openWarehouse(t, r.wh)
		po := chaosPipelineOptions()
		po.Warehouse = wh
		ev, err := NewEvents(r.ctx, po)
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewJSONHandler(r, &slog.HandlerOptions{Level: slog.LevelWarn}))
		e, err := streaming.New(ev.Job, chaosEngineOptions(r.addr, r.cp, r.failOnDataLoss(), r.pattern, log, ev))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(r.ctx); err != nil {
			t.Fatal(err)
		}
		reached := func() bool {
			p, ok, err := streaming.ReadProgress(r.cp)
			if err != nil || !ok {
				return false
			}
			all := true
			ends.Each(func(o kadm.ListedOffset) {
				s, _ := starts.Lookup(o.Topic, o.Partition)
				if o.Offset > s.Offset && p.Ends[streaming.TopicPartition{Topic: o.Topic, Partition: o.Partition}] != o.Offset {
					all = false
				}
			})
			return all
		}
		deadline := time.After(60 * time.Second)
	wait:
		for !reached() {
			select {
			case <-e.Done():
				break wait
			case <-deadline:
				p, _, _ := streaming.ReadProgress(r.cp)
				t.Fatalf("drain: the engine did not reach the ends %v in 60 s; its checkpoint has %v (err %v)", ends, p.Ends, e.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		sctx, scancel := context.WithTimeout(r.ctx, 30*time.Second)
		err = e.Stop(sctx)
		scancel()
		ev.Close()
		wh.Close()
		var d streaming.DataLoss
		if errors.As(err, &d) {
			r.lossReported(d, "drain engine")
			continue
		}
		if err != nil {
			t.Fatalf("drain: engine stopped: %v", err)
		}
		break
	}
	goleak.VerifyNone(t, ignore)
}

func TestChaos(t *testing.T) {
	ops, seed := chaosenv.Ops(t, 6, 10), chaosenv.Seed(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &chaosRun{t: t, ctx: ctx, seed: seed, ops: ops, dir: t.TempDir(), cp: t.TempDir(), wh: t.TempDir(),
		recs: map[string]*chaosRec{}, fail: seed%3 != 2, pattern: seed%2 == 1, lossless: seed%4 == 3}
	r.childLog = filepath.Join(t.TempDir(), "child.log")
	r.b = r.startBroker("127.0.0.1:0")
	r.addr = r.b.Addr()
	defer func() {
		r.bmu.Lock()
		r.b.Stop(context.Background())
		r.bmu.Unlock()
	}()
	adm, closeAdm := r.adminClient()
	for _, topic := range chaosTopics {
		id, err := r.createTopic(adm, topic)
		if err != nil {
			t.Fatal(err)
		}
		if topic == chaosB {
			r.incs = append(r.incs, id)
		}
	}
	closeAdm()
	t.Logf("seed %d, %d ops, fail_on_data_loss %v at start, topic pattern %v, lossless %v", seed, ops, r.fail, r.pattern, r.lossless)

	rng := rand.New(rand.NewPCG(seed, 1))
	codecs := []kgocompress.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd}
	var wg sync.WaitGroup
	kc := func() kgo.CompressionCodec { return chaosKgoCodecs[rng.IntN(len(chaosKgoCodecs))] }
	idem, plain, txn, kafkago := kc(), kc(), kc(), codecs[rng.IntN(len(codecs))] // drawn before the workers start
	workers := []func(){
		func() { r.kgoProducer("idem", true, idem) },
		func() { r.kgoProducer("plain", false, plain) },
		func() { r.txnProducer("txn", txn) },
		func() { r.kafkagoProducer(kafkago) },
		r.compactProducer,
		r.admin,
	}
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); w() }()
	}
	done := make(chan struct{})
	enginesDone := make(chan struct{})
	go func() { defer close(enginesDone); r.engines(done) }()
	wg.Wait()
	close(done)
	<-enginesDone
	r.drain()
	r.check()
	if keep := os.Getenv("TAGPIPE_CHAOS_KEEP"); keep != "" && len(r.errs) > 0 {
		// For a look at a failed run: the warehouse, the checkpoint and the child's log.
		for name, dir := range map[string]string{"warehouse": r.wh, "checkpoint": r.cp, "child": filepath.Dir(r.childLog)} {
			if err := os.CopyFS(filepath.Join(keep, name), os.DirFS(dir)); err != nil {
				t.Log(err)
			}
		}
		os.WriteFile(filepath.Join(keep, "engine.log"), r.logBuf.Bytes(), 0o644)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	t.Logf("%d records produced, %d engine runs (%d killed, %d of them right after a table commit, %d stopped), %d chaos-b incarnations, %d data-loss reports; runs: %v",
		len(r.recs), len(r.ended), r.kills, r.selfKills, r.stops, len(r.incs), len(r.reports), r.ended)
}

type chaosLoc struct {
	topic     string
	partition int32
	offset    int64
}

// warnings reads the data-loss warnings the engines logged (fail_on_data_loss false).
func (r *chaosRun) warnings() []chaosReport {
	var lines [][]byte
	r.logMu.Lock()
	lines = append(lines, bytes.Split(r.logBuf.Bytes(), []byte("\n"))...)
	r.logMu.Unlock()
	if b, err := os.ReadFile(r.childLog); err == nil {
		lines = append(lines, bytes.Split(b, []byte("\n"))...)
	}
	var out []chaosReport
	for _, l := range lines {
		var m struct {
			Msg, Partition, TopicID, PrevTopicID string
			From, LogStart, Position, End        int64
		}
		if len(l) == 0 {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal(l, &raw); err != nil {
			continue // a line cut by kill -9
		}
		b, _ := json.Marshal(map[string]any{"Msg": raw["msg"], "Partition": raw["partition"], "TopicID": raw["topic_id"],
			"PrevTopicID": raw["prev_topic_id"], "From": raw["from"], "LogStart": raw["log_start"], "Position": raw["position"], "End": raw["end"]})
		json.Unmarshal(b, &m)
		topic, p, ok := strings.Cut(m.Partition, "/")
		if !ok {
			continue
		}
		pn, _ := strconv.Atoi(p)
		tp := streaming.TopicPartition{Topic: topic, Partition: int32(pn)}
		switch {
		case strings.HasPrefix(m.Msg, "records deleted before they were read"):
			out = append(out, chaosReport{tp: tp, from: m.From, until: m.LogStart, deleted: true})
		case strings.HasPrefix(m.Msg, "topic deleted and recreated"):
			out = append(out, chaosReport{tp: tp, until: m.Position, prevID: m.PrevTopicID, newID: m.TopicID})
		case strings.HasPrefix(m.Msg, "partition end moved below"):
			out = append(out, chaosReport{tp: tp, from: m.End, until: m.Position})
		}
	}
	return out
}

// readLog reads every record the topics still hold (read_committed).
func (r *chaosRun) readLog() map[chaosLoc]string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.ConsumeTopics(chaosTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	out := map[chaosLoc]string{}
	for idle := 0; idle < 3; {
		ctx, cancel := context.WithTimeout(r.ctx, 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			out[chaosLoc{rec.Topic, rec.Partition, rec.Offset}] = string(rec.Value)
			n++
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}

// itemOf is the item id of a line that parses (JSON or Taobao).
func itemOf(raw string) string {
	if _, rest, ok := strings.Cut(raw, `"item_id":"`); ok {
		id, _, _ := strings.Cut(rest, `"`)
		return id
	}
	if fs := strings.Split(raw, ","); len(fs) == 5 {
		return fs[1]
	}
	return ""
}

// lineFields are the event time (Unix seconds), action and category of a line that
// parses.
func lineFields(raw string) (ts int64, action, category string) {
	if strings.HasPrefix(raw, "{") {
		var e struct {
			TS       int64  `json:"ts"`
			Action   string `json:"action"`
			Category string `json:"category"`
		}
		json.Unmarshal([]byte(raw), &e)
		return e.TS, e.Action, e.Category
	}
	fs := strings.Split(raw, ",")
	ts, _ = strconv.ParseInt(fs[4], 10, 64)
	return ts, fs[3], fs[2]
}

func eventID(raw string) string {
	_, rest, ok := strings.Cut(raw, `"event_id":"`)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

func (r *chaosRun) check() {
	t := r.t
	wh := openWarehouse(t, r.wh)
	r.mu.Lock()
	defer r.mu.Unlock()
	errorf := func(format string, args ...any) {
		if len(r.errs) < 30 {
			r.errs = append(r.errs, fmt.Sprintf(format, args...))
		}
	}
	atoi := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	place := func(m map[string]string) chaosLoc {
		return chaosLoc{m["topic"], int32(atoi(m["partition"])), atoi(m["offset"])}
	}

	// ods_events: produced, not aborted, each log record once.
	type placed struct {
		chaosLoc
		raw string
	}
	ods := map[placed]int{}
	inODS := map[string]bool{}
	wantDWD, wantDLQ := map[string][]placed{}, map[placed]bool{}
	var taobao []placed // lines without an event id: in dwd_events as they are
	for _, m := range rows(t, wh, TableODS, "topic", "partition", "offset", "raw") {
		p := placed{place(m), m["raw"]}
		c := r.recs[p.raw]
		switch {
		case c == nil:
			errorf("ods_events %v: %q was never produced", p.chaosLoc, p.raw)
			continue
		case c.aborted:
			errorf("ods_events %v: %q of an aborted transaction (read_committed)", p.chaosLoc, p.raw)
		case c.once && c.offset >= 0 && c.acked && (c.topic != p.topic || c.partition != p.partition || c.offset != p.offset):
			errorf("ods_events %v: %q (%s) was acknowledged at %s/%d offset %d", p.chaosLoc, p.raw, c.by, c.topic, c.partition, c.offset)
		}
		if ods[p]++; ods[p] == 2 {
			errorf("ods_events: %v %q (%s) twice", p.chaosLoc, p.raw, c.by)
		}
		inODS[p.raw] = true
		if c.json && !c.bad {
			wantDWD[eventID(p.raw)] = append(wantDWD[eventID(p.raw)], p)
		}
		if !c.json && !c.bad {
			taobao = append(taobao, p)
		}
		if c.bad {
			wantDLQ[p] = true
		}
	}

	// Every record still in the log is in ods_events.
	log := r.readLog()
	for loc, v := range log {
		if ods[placed{loc, v}] != 1 {
			errorf("%v %q is in the log, %d times in ods_events", loc, v, ods[placed{loc, v}])
		}
	}

	// A committed record missing from ods_events was deleted and its loss reported.
	warnings := r.warnings()
	reports := append(append([]chaosReport(nil), r.reports...), warnings...)
	inc := func(id string) int {
		for i, x := range r.incs {
			if x == id {
				return i
			}
		}
		return -1
	}
	newest := map[string]int64{}
	for _, c := range r.recs {
		if c.topic == chaosC && c.acked && c.offset > newest[c.key] {
			newest[c.key] = c.offset
		}
	}
	// reported says whether a data-loss report covers record c at partition p, offset
	// off: a deleted range holding it, or its topic recreated after the job had
	// reached an offset at or below it.
	reported := func(c *chaosRec, p int32, off int64) bool {
		tp := streaming.TopicPartition{Topic: c.topic, Partition: p}
		for _, d := range reports {
			if d.tp != tp {
				continue
			}
			switch {
			case d.deleted:
				if d.from <= off && off < d.until {
					return true
				}
			case d.prevID == "": // the end moved below the position
				if c.inc < len(r.incs)-1 && off >= d.until {
					return true
				}
			default:
				prev, next := inc(d.prevID), inc(d.newID)
				if prev >= 0 && prev <= c.inc && c.inc < next && (c.inc > prev || off >= d.until) {
					return true
				}
			}
		}
		return false
	}
	missing := 0
	for v, c := range r.recs {
		if !c.acked || c.offset < 0 || inODS[v] {
			continue
		}
		missing++
		if _, ok := log[chaosLoc{c.topic, c.partition, c.offset}]; ok && c.inc == len(r.incs)-1 {
			continue // reported above
		}
		covered := c.topic == chaosC && newest[c.key] > c.offset // compacted away
		if !covered && !reported(c, c.partition, c.offset) {
			errorf("%s/%d offset %d (incarnation %d) %q: acknowledged, not in ods_events, no data loss reported for it", c.topic, c.partition, c.offset, c.inc, v)
		}
	}

	// The DataLoss errors name real losses.
	adm, closeAdm := r.adminClient()
	defer closeAdm()
	starts, err := adm.ListStartOffsets(r.ctx, chaosTopics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.reports {
		switch {
		case d.deleted:
			s, _ := starts.Lookup(d.tp.Topic, d.tp.Partition)
			if d.tp.Topic != chaosA || s.Offset < d.until {
				errorf("data loss %+v reported, but %s starts at %d", d, d.tp, s.Offset)
			}
		case d.prevID != "":
			if p, n := inc(d.prevID), inc(d.newID); p < 0 || n <= p {
				errorf("data loss %+v: topic ids not of incarnations %v in order", d, r.incs)
			}
		default:
			if d.tp.Topic != chaosB {
				errorf("data loss %+v: partition end moved back on a topic never recreated", d)
			}
		}
	}

	// dwd_events: each event id once, all of them; dlq_events: each malformed line
	// once. A batch replayed after a kill, when records it had read are gone by then
	// (deleted, or its topic recreated), is written without them to the tables that
	// had not committed it and rebuilds the dedup state without their ids (README):
	// rows in a reported gap may be missing, and their ids seen again.
	// The same holds for records compacted away between a batch's read and its replay
	// (no data loss: a newer record of the key is there).
	unsure := func(c *chaosRec, p int32, off int64) bool {
		return !r.lossless && (reported(c, p, off) || c.topic == chaosC && newest[c.key] > off)
	}
	if r.lossless && len(reports) > 0 {
		errorf("data loss reported though nothing removed records: %+v", reports)
	}
	inGap := func(p placed) bool { return unsure(r.recs[p.raw], p.partition, p.offset) }
	anyInGap := func(ps []placed) bool { return slices.ContainsFunc(ps, inGap) }
	byEventID := map[string]*chaosRec{}
	for v, c := range r.recs {
		if c.json && !c.bad {
			byEventID[eventID(v)] = c
		}
	}
	dwd, dwdGap := map[string]int{}, map[string]bool{}
	var dwdOnly, twice []string // ids not in ods_events, ids twice
	for _, m := range rows(t, wh, TableDWD, "event_id", "topic", "partition", "offset") {
		id := m["event_id"]
		if id == "NULL" || id == "" {
			continue
		}
		c := byEventID[id]
		if c != nil && unsure(c, int32(atoi(m["partition"])), atoi(m["offset"])) {
			dwdGap[id] = true
		}
		if dwd[id]++; dwd[id] == 2 {
			twice = append(twice, id)
		}
		if wantDWD[id] == nil {
			if !dwdGap[id] {
				errorf("dwd_events: event id %s not in ods_events (at %v)", id, place(m))
			}
			dwdOnly = append(dwdOnly, id)
		}
	}
	for _, id := range twice {
		// The dedup state of a replay rebuilt without the id's first copy lets a
		// later copy (a producer's retry) in.
		if !dwdGap[id] && !anyInGap(wantDWD[id]) {
			errorf("dwd_events: event id %s twice", id)
		}
	}
	gapped := 0
	for id, ps := range wantDWD {
		if dwd[id] == 0 {
			if !anyInGap(ps) {
				errorf("dwd_events: event id %s missing (in ods_events at %v)", id, ps)
			}
			gapped++
		}
	}
	gapped += len(dwdOnly)
	dlq := map[placed]int{}
	for _, m := range rows(t, wh, TableDLQ, "topic", "partition", "offset", "raw") {
		p := placed{place(m), m["raw"]}
		if dlq[p]++; dlq[p] == 2 {
			errorf("dlq_events: %v %q twice", p.chaosLoc, p.raw)
		}
		if !wantDLQ[p] {
			if c := r.recs[p.raw]; c == nil || !c.bad || !inGap(p) {
				errorf("dlq_events: %v %q is no malformed line of ods_events", p.chaosLoc, p.raw)
			}
			gapped++
		}
	}
	for p := range wantDLQ {
		if dlq[p] == 0 {
			if !inGap(p) {
				errorf("dlq_events: %v %q missing", p.chaosLoc, p.raw)
			}
			gapped++
		}
	}
	// rt_window_counts: each window once, counting the dwd_events rows in it that are
	// not in rt_late_events (window state crosses every stop and kill).
	late := map[string]bool{}
	for _, m := range rows(t, wh, TableLate, "topic", "partition", "offset", "item_id") {
		late[m["topic"]+"/"+m["partition"]+"/"+m["offset"]+"/"+m["item_id"]] = true
	}
	type bucket struct {
		minute   int64
		dim, key string
	}
	// A batch replayed after a kill (or retried), when records it had read are gone
	// by then (deleted, compacted, or their topic recreated), rebuilds the window
	// state without them while tables that had committed it keep them, and the
	// other way round (README): a record in a reported gap, or compacted, may or may
	// not be counted, whichever tables hold it.
	byItem := map[string]string{} // item id → line
	for v, c := range r.recs {
		if !c.bad {
			byItem[itemOf(v)] = v
		}
	}
	sure, maybe := map[bucket]int64{}, map[bucket]int64{}
	maybeSeen := map[string]bool{}
	addMaybe := func(k, raw string) {
		if maybeSeen[k] {
			return
		}
		maybeSeen[k] = true
		ts, action, category := lineFields(raw)
		maybe[bucket{ts / 60, "action", action}]++
		maybe[bucket{ts / 60, "category", category}]++
	}
	dwdAt, dwdItems := map[string]int{}, map[string]bool{}
	for _, m := range rows(t, wh, TableDWD, "topic", "partition", "offset", "item_id", "event_time", "action", "category") {
		k := m["topic"] + "/" + m["partition"] + "/" + m["offset"] + "/" + m["item_id"]
		if dwdAt[k]++; dwdAt[k] == 2 {
			errorf("dwd_events: %s twice", k)
		}
		dwdItems[m["item_id"]] = true
		raw := byItem[m["item_id"]]
		if c := r.recs[raw]; c != nil && unsure(c, int32(atoi(m["partition"])), atoi(m["offset"])) {
			addMaybe(k, raw)
			continue
		}
		if late[k] {
			continue
		}
		at, err := time.Parse(time.RFC3339, m["event_time"])
		if err != nil {
			t.Fatal(err)
		}
		minute := at.Unix() / 60
		sure[bucket{minute, "action", m["action"]}]++
		sure[bucket{minute, "category", m["category"]}]++
	}
	for _, ps := range append(slices.Collect(maps.Values(wantDWD)), taobao) {
		for _, p := range ps {
			if inGap(p) {
				addMaybe(fmt.Sprintf("%s/%d/%d/%s", p.topic, p.partition, p.offset, itemOf(p.raw)), p.raw)
			}
		}
	}
	// A record in neither table (nor in the log) may have been counted by a batch
	// replayed without it: gone before the replay (missing ones are checked above).
	for v, c := range r.recs {
		if !r.lossless && !c.bad && !c.aborted && !inODS[v] && !dwdItems[itemOf(v)] {
			addMaybe("gone/"+v, v)
		}
	}
	for _, p := range taobao {
		k := fmt.Sprintf("%s/%d/%d/%s", p.topic, p.partition, p.offset, itemOf(p.raw))
		if dwdAt[k] == 0 {
			if !inGap(p) {
				errorf("dwd_events: no row for %s (%q of ods_events)", k, p.raw)
			}
			gapped++
		}
	}
	windows := map[string]bool{}
	nw, short, again := 0, 0, 0
	for _, m := range rows(t, wh, TableWindowCounts, "window_start", "window_end", "dimension", "key", "events") {
		k := m["window_start"] + " " + m["dimension"] + " " + m["key"]
		nw++
		from, err1 := time.Parse(time.RFC3339, m["window_start"])
		until, err2 := time.Parse(time.RFC3339, m["window_end"])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		var want, unsure int64
		for minute := from.Unix() / 60; minute < until.Unix()/60; minute++ {
			want += sure[bucket{minute, m["dimension"], m["key"]}]
			unsure += maybe[bucket{minute, m["dimension"], m["key"]}]
		}
		// A window emitted by a batch that a replay then rebuilt without some of its
		// records (state behind what was emitted) can be emitted again (README).
		if windows[k] {
			if unsure == 0 {
				errorf("rt_window_counts: window %s twice", k)
			} else {
				again++
			}
		}
		windows[k] = true
		if got := atoi(m["events"]); got < want || got > want+unsure {
			errorf("rt_window_counts: window %s counts %d events, dwd_events has %d in it (not late), and %d more may count (in reported gaps or compacted)", k, got, want, unsure)
		} else if unsure > 0 {
			short++
		}
	}

	// The consumer group's offsets are the checkpoint's.
	p, ok, err := streaming.ReadProgress(r.cp)
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	offs, err := adm.FetchOffsets(r.ctx, chaosGroup)
	if err != nil {
		t.Fatal(err)
	}
	for tp, end := range p.Ends {
		if o, ok := offs.Lookup(tp.Topic, tp.Partition); !ok || o.At != end {
			errorf("group %s has %s at %d (found %v), the checkpoint at %d", chaosGroup, tp, o.At, ok, end)
		}
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if _, ok := p.Ends[streaming.TopicPartition{Topic: o.Topic, Partition: o.Partition}]; !ok {
			errorf("group %s has %s/%d at %d, the checkpoint nothing", chaosGroup, o.Topic, o.Partition, o.At)
		}
	})
	t.Logf("ods_events %d rows (%d log records), dwd_events %d ids, dlq_events %d (%d rows in reported gaps or compacted in one of ods_events and these but not the other), %d windows (%d with such rows, %d emitted again); %d acknowledged records not in ods_events; %d data-loss warnings",
		len(ods), len(log), len(dwd), len(dlq), gapped, nw, short, again, missing, len(warnings))
	if testing.Verbose() {
		for _, d := range reports {
			t.Logf("data loss reported: %+v", d)
		}
	}
}
