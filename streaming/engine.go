package streaming

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Options configure an Engine. Zero values take the documented defaults.
type Options struct {
	// Brokers are Kafka bootstrap addresses (host:port). Required.
	Brokers []string
	// Security is TLS and SASL for the brokers (the source, topic ids included); nil =
	// PLAINTEXT.
	Security *kafkasec.Security
	// Topics are read by every batch. Required.
	Topics []string
	// TopicPattern, instead of Topics, subscribes to every topic whose whole name it
	// matches (Spark's subscribePattern), internal topics excepted; topics created later
	// are picked up at the next batch and read from their start.
	TopicPattern *regexp.Regexp
	// Group, when set, receives each committed batch's end offsets (OffsetCommit) so lag
	// tools see progress. The checkpoint and the warehouse hold the truth.
	Group string
	// ClientID is the Kafka client id; default "tagpipe-streaming".
	ClientID string
	// CheckpointDir holds offsets/, state/ and commits/. Required.
	CheckpointDir string
	// MaxRecordsPerPartition caps one batch's range per partition; 0 = no cap.
	MaxRecordsPerPartition int64
	// MaxRecordsPerBatch caps one batch's records in all, split across partitions in
	// proportion to their lag (Spark's maxOffsetsPerTrigger); 0 = no cap.
	MaxRecordsPerBatch int64
	// MinRecordsPerBatch delays a batch while the topics hold fewer new records than this
	// (Spark's minOffsetsPerTrigger): the interval's batch is not run, and the next
	// interval looks again, until enough have come or MaxTriggerDelay has passed since
	// the last batch ran. Fewer, larger batches: fewer warehouse files at low rates, at
	// the cost of latency. A batch at a slide time of the job's batch-time windows is
	// never delayed (its windows emit only then), nor are replays, retries and
	// AvailableNow runs. 0 = every interval runs a batch.
	MinRecordsPerBatch int64
	// MaxTriggerDelay bounds that wait (Spark's maxTriggerDelay); default 15 minutes.
	MaxTriggerDelay time.Duration
	// MaxRatePerPartition caps records/s per partition (× interval per batch); 0 = no cap.
	MaxRatePerPartition float64
	// Backpressure enables the PID rate estimator; PID tunes it.
	Backpressure bool
	PID          PIDOptions
	// StartingOffsets is where the partitions start when the job starts from nothing:
	// "earliest" (default), "latest", an RFC 3339 time (Spark's startingTimestamp:
	// the first offset whose record timestamp is at or after it, per ListOffsets; a
	// partition with none starts at its end), or Spark's JSON of offsets per partition,
	// {"events":{"0":23,"1":-2}} (-2 earliest, -1 latest; a partition not listed starts
	// at its beginning; an offset no longer in the log is data loss). Partitions that
	// appear later start at their beginning.
	StartingOffsets string
	// Resume, when set and the checkpoint is empty, returns the last batch a previous run
	// committed to its outputs (e.g. from warehouse snapshot properties). The engine
	// replays that batch first (outputs that hold it skip it, outputs that missed it
	// catch up) and continues after it. Operator state starts empty.
	Resume func(ctx context.Context) (last BatchInfo, ok bool, err error)
	// RetryBackoff is the first wait before a failed batch is retried (state is restored
	// from the checkpoint first); it doubles per attempt up to 30s. Default 1s.
	RetryBackoff time.Duration
	// MaxRetries is how many times one batch is retried before the engine stops with an
	// error; 0 retries forever (a broker restart or a full disk is waited out).
	MaxRetries int
	// AvailableNow (Spark's Trigger.AvailableNow) reads what the topics hold when the
	// engine starts — in batches, with the usual caps and pacing — and then stops by
	// itself: Done closes with a nil Err. Records produced later, and partitions that
	// appear later, are left for the next run.
	AvailableNow bool
	// IsolationLevel is "read_uncommitted" (default, Kafka's and Spark's) or
	// "read_committed": ranges end at the last stable offset and the records of aborted
	// transactions and the transaction markers are dropped. Topics written by
	// transactional producers want read_committed (kafka-go's Conn, which the default
	// reads with, returns markers as records).
	IsolationLevel string
	// FailOnDataLoss stops the engine with an ErrDataLoss error, without retrying, when
	// offsets it is to read are gone (see DataLoss); false skips them with a warning.
	// DefaultOptions sets it, as Spark's failOnDataLoss defaults to true.
	FailOnDataLoss bool
	// Now and After are the clock; nil = the real one.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Registry receives the engine's metrics; nil = none.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// OnBatch is called after every committed batch (tests, status).
	OnBatch func(BatchMetrics)
}

// DefaultOptions returns Options with defaults filled in (Brokers, Topics, CheckpointDir
// still to set).
func DefaultOptions() Options {
	return Options{
		ClientID:               "tagpipe-streaming",
		MaxRecordsPerPartition: 100000,
		StartingOffsets:        "earliest",
		PID:                    DefaultPIDOptions(),
		RetryBackoff:           time.Second,
		FailOnDataLoss:         true,
		MaxTriggerDelay:        15 * time.Minute,
	}
}

// BatchMetrics describe one committed batch.
type BatchMetrics struct {
	Pipeline string    `json:"pipeline"`
	ID       int64     `json:"id"`
	Time     time.Time `json:"time"`
	Records  int64     `json:"records"`
	// InputRate is records per second of batch interval.
	InputRate float64 `json:"input_rate"`
	// ProcessingTime is from the batch's start to its commit.
	ProcessingTime time.Duration `json:"processing_time"`
	// SchedulingDelay is how late the batch started after its time.
	SchedulingDelay time.Duration `json:"scheduling_delay"`
	// Lag is the records left in the topics after this batch's ranges.
	Lag int64 `json:"lag"`
	// RateLimit is the estimator's total records/s after this batch (0 = none).
	RateLimit float64 `json:"rate_limit"`
	Replayed  bool    `json:"replayed,omitempty"`
	Ranges    Ranges  `json:"ranges"`
}

// Engine runs a Job over Kafka topics in micro-batches.
type Engine struct {
	job  *Job
	opts Options
	log  *slog.Logger
	src  *source
	cp   *checkpoint
	met  *metrics
	pid  *pidEstimator
	// startAt is StartingOffsets as a time (zero: earliest or latest), startOffsets
	// as offsets per partition (nil unless given so).
	startAt      time.Time
	startOffsets map[TopicPartition]int64
	// targets, with AvailableNow, are the partitions' ends when the engine started.
	targets map[TopicPartition]int64
	// lostUpTo is, per partition, the end of the deleted offsets counted lost so far
	// (dataLoss; partitions read concurrently, hence the lock).
	lostMu   sync.Mutex
	lostUpTo map[TopicPartition]int64

	// owned by the run loop
	// lastRun is when the last batch ran (or the engine started), delayedAt the time of
	// the last batch delayed for MinRecordsPerBatch (zero: none since the last one ran).
	lastRun, delayedAt time.Time
	ends               map[TopicPartition]int64
	// ids are the topic ids of the last committed batch's plan (nil: unknown).
	ids       map[string]string
	nextID    int64
	lastTime  time.Time
	rate      float64
	initState map[string][]byte
	// state checkpoints since the last full one (see snapshotStates)
	fullBytes, deltaBytes int
	sinceFull             int

	mu       sync.Mutex
	recent   []BatchMetrics
	started  bool
	stopReq  chan struct{}
	abort    context.CancelFunc
	done     chan struct{}
	runErr   error
	closed   bool
	released bool
}

// New builds an engine for job. Call Start (or Run).
func New(job *Job, opts Options) (*Engine, error) {
	d := DefaultOptions()
	if opts.ClientID == "" {
		opts.ClientID = d.ClientID
	}
	if opts.StartingOffsets == "" {
		opts.StartingOffsets = d.StartingOffsets
	}
	if opts.PID == (PIDOptions{}) {
		opts.PID = d.PID
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = d.RetryBackoff
	}
	if opts.MaxTriggerDelay <= 0 {
		opts.MaxTriggerDelay = d.MaxTriggerDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case len(opts.Brokers) == 0:
		return nil, errors.New("cannot build streaming engine: no brokers")
	case len(opts.Topics) == 0 && opts.TopicPattern == nil:
		return nil, errors.New("cannot build streaming engine: no topics")
	case len(opts.Topics) > 0 && opts.TopicPattern != nil:
		return nil, errors.New("cannot build streaming engine: topics and a topic pattern are both set; give one")
	case opts.CheckpointDir == "":
		return nil, errors.New("cannot build streaming engine: no checkpoint directory")
	}
	startAt, startOffsets, err := parseStartingOffsets(opts.StartingOffsets)
	if err != nil {
		return nil, fmt.Errorf("cannot build streaming engine: %w", err)
	}
	switch opts.IsolationLevel {
	case "", "read_uncommitted", "read_committed":
	default:
		return nil, fmt.Errorf("cannot build streaming engine: isolation level %q: want read_uncommitted or read_committed", opts.IsolationLevel)
	}
	e := &Engine{
		job: job, opts: opts, startAt: startAt, startOffsets: startOffsets,
		log:     opts.Logger.With("pipeline", job.name),
		pid:     newPIDEstimator(opts.PID, job.interval),
		ends:    map[TopicPartition]int64{},
		stopReq: make(chan struct{}),
		done:    make(chan struct{}),
	}
	e.met = newMetrics(opts.Registry, job.name)
	return e, nil
}

// Start recovers from the checkpoint and starts the batch loop.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("streaming engine already started")
	}
	e.started = true
	e.mu.Unlock()
	fail := func(err error) error {
		e.mu.Lock()
		e.started = false // Stop after a failed Start is a no-op
		e.mu.Unlock()
		return err
	}
	cp, err := openCheckpoint(e.opts.CheckpointDir)
	if err != nil {
		return fail(err)
	}
	e.cp = cp
	e.src = newSource(e.opts.Brokers, e.opts.Security, newSubscription(e.opts.Topics, e.opts.TopicPattern), e.opts.Group, e.opts.ClientID)
	e.src.onLoss = e.dataLoss
	e.src.topicIDs.log = e.log
	if e.opts.IsolationLevel == "read_committed" {
		e.src.isolation = kafka.ReadCommitted
	}
	e.lastRun = e.opts.Now()
	replay, err := e.recover(ctx)
	if err == nil && e.opts.AvailableNow {
		err = e.setTargets(ctx)
	}
	if err != nil {
		e.src.close()
		e.cp.close()
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.abort = cancel
	go func() {
		defer close(e.done)
		defer cancel()
		err := e.loop(runCtx, replay)
		e.mu.Lock()
		e.runErr = err
		e.mu.Unlock()
		if err != nil {
			e.log.Error("streaming engine stopped", "err", err)
		}
	}()
	return nil
}

// Name is the lifecycle component name.
func (e *Engine) Name() string { return "streaming:" + e.job.name }

// Stop asks the loop to finish the batch in progress (commit included) and waits for it.
// When ctx ends first, the batch in progress is abandoned uncommitted (it will be replayed
// on the next start). Safe to call twice.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.started {
		e.mu.Unlock()
		return nil
	}
	if !e.closed {
		e.closed = true
		close(e.stopReq)
	}
	e.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		e.abort()
		<-e.done
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.released {
		e.released = true
		e.src.close()
		e.cp.close()
	}
	return e.runErr
}

// Done is closed when the loop has ended (by Stop or a fatal error); Err says why.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err is the error that ended the loop, if any.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runErr
}

// Run starts the engine and stops it gracefully when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-e.done:
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.Stop(stopCtx)
}

// RecentBatches returns the metrics of the last committed batches, oldest first.
func (e *Engine) RecentBatches() []BatchMetrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]BatchMetrics(nil), e.recent...)
}

// recover loads the last committed batch's state and ends, and returns a planned but
// uncommitted batch to replay first (nil when none).
func (e *Engine) recover(ctx context.Context) (*plan, error) {
	e.initState = map[string][]byte{}
	for _, op := range e.job.stateful {
		b, err := op.snapshotState()
		if err != nil {
			return nil, fmt.Errorf("cannot snapshot initial state of %s: %w", op.stateName(), err)
		}
		e.initState[op.stateName()] = b
	}
	last, err := e.cp.lastID("commits")
	if err != nil {
		return nil, err
	}
	if last < 0 {
		e.nextID = 0
		if e.opts.Resume != nil {
			b, ok, err := e.opts.Resume(ctx)
			if err != nil {
				return nil, fmt.Errorf("cannot resume from the outputs: %w", err)
			}
			if ok {
				e.log.Info("no checkpoint: resuming from the outputs' last batch", "batch", b.ID)
				p := plan{BatchID: b.ID, BatchTime: b.Time, Ranges: b.Ranges}
				if err := e.cp.writePlan(p); err != nil {
					return nil, err
				}
				e.nextID = b.ID
			}
		}
	} else {
		p, ok, err := e.cp.readPlan(last)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("cannot recover: batch %d is committed but its plan is missing from %s", last, e.cp.dir)
		}
		if err := e.restore(last); err != nil {
			return nil, err
		}
		e.ends = p.Ranges.Ends()
		e.ids = p.TopicIDs
		e.lastTime = p.BatchTime
		e.nextID = last + 1
	}
	p, ok, err := e.cp.readPlan(e.nextID)
	if err != nil {
		return nil, err
	}
	if ok {
		e.log.Info("replaying planned batch that did not commit", "batch", p.BatchID, "records", p.Ranges.Count())
		return &p, nil
	}
	return nil, nil
}

// restore sets every stateful operator to its state after batch id (or the initial state
// when id < 0 or none was saved for it).
func (e *Engine) restore(id int64) error {
	st := e.initState
	var deltas []map[string][]byte
	if id >= 0 {
		full, ds, ok, err := e.cp.readState(id)
		if err != nil {
			return err
		}
		if ok {
			st, deltas = full, ds
		}
	}
	for _, op := range e.job.stateful {
		name := op.stateName()
		inc, isInc := op.(incrementalOp)
		b, ok := st[name]
		if !ok {
			b = e.initState[name]
		}
		if !isInc && len(deltas) > 0 {
			// Its full state is in every delta file: the last one is current.
			if last, ok := deltas[len(deltas)-1][name]; ok {
				b = last
			}
		}
		if err := op.restoreState(b); err != nil {
			return fmt.Errorf("cannot restore state of %s: %w", name, err)
		}
		if isInc {
			for _, d := range deltas {
				if db, ok := d[name]; ok {
					if err := inc.applyDelta(db); err != nil {
						return fmt.Errorf("cannot restore state of %s: %w", name, err)
					}
				}
			}
		}
	}
	// The next checkpoint is a full one: the in-memory state may be behind what the
	// disk holds for later batches (a retry), and a new chain starts clean.
	e.deltaBytes, e.fullBytes, e.sinceFull = 0, 0, 0
	return nil
}

// incrementalOp is a stateful operator that can checkpoint its changes since the
// previous checkpoint instead of its whole state (MapWithState: a dedup state holds
// every event id of a day, a batch adds a few thousand).
type incrementalOp interface {
	statefulOp
	// deltaState encodes the changes since the last snapshotState, deltaState or
	// restore.
	deltaState() ([]byte, error)
	// applyDelta applies deltaState's output to the state it was taken from.
	applyDelta([]byte) error
}

// maxDeltaChain bounds the deltas after a full state snapshot (files to keep and
// read at recovery).
const maxDeltaChain = 1000

// snapshotStates encodes every stateful operator's state after the batch: a delta
// (incremental operators' changes, the others' full state) while the deltas since the
// last full snapshot stay smaller than it, else a full snapshot. Recovery reads the
// full snapshot and the deltas after it: at most about twice the state's size.
func (e *Engine) snapshotStates() (map[string][]byte, bool, error) {
	st := make(map[string][]byte, len(e.job.stateful))
	encode := func(full bool) (int, error) {
		size := 0
		for _, op := range e.job.stateful {
			var b []byte
			var err error
			if inc, ok := op.(incrementalOp); ok && !full {
				b, err = inc.deltaState()
			} else {
				b, err = op.snapshotState()
			}
			if err != nil {
				return 0, fmt.Errorf("cannot snapshot state of %s: %w", op.stateName(), err)
			}
			st[op.stateName()] = b
			size += len(b)
		}
		return size, nil
	}
	full := e.fullBytes == 0 || e.sinceFull >= maxDeltaChain
	size, err := encode(full)
	if err != nil {
		return nil, false, err
	}
	if !full && e.deltaBytes+size > e.fullBytes {
		full = true
		if size, err = encode(true); err != nil {
			return nil, false, err
		}
	}
	if full {
		e.fullBytes, e.deltaBytes, e.sinceFull = max(size, 1), 0, 0
	} else {
		e.deltaBytes += size
		e.sinceFull++
	}
	return st, full, nil
}

func (e *Engine) stopping() bool {
	select {
	case <-e.stopReq:
		return true
	default:
		return false
	}
}

func (e *Engine) loop(ctx context.Context, replay *plan) error {
	// next is the following batch, planned and being read while the current one is
	// processed (see startPrefetch); its plan is persisted only when it is its turn.
	var next *prefetch
	preCtx, cancelPre := context.WithCancel(ctx)
	defer func() {
		cancelPre()
		if next != nil {
			<-next.done // its reads use the source, which Stop closes
		}
	}()
	for {
		if replay == nil && e.caughtUp() {
			e.log.Info("read what the topics held at start; stopping (available now)")
			return nil
		}
		var p plan
		if replay != nil {
			p, replay = *replay, nil
			p.replay = true
		} else if next != nil && e.prefetchUsable(next) {
			p = next.plan
			if e.delay(p) {
				next = nil // planned and read too early: planned again at the next interval
				continue
			}
			if err := e.cp.writePlan(p); err != nil {
				e.log.Warn("cannot persist batch plan; retrying", "err", err)
				next = nil
				if !e.sleep(e.opts.RetryBackoff) {
					return nil
				}
				continue
			}
		} else {
			if next != nil {
				<-next.done // ends promptly: stopping, or its plan failed
				next = nil
			}
			if e.stopping() {
				return nil
			}
			now := e.opts.Now()
			last := e.lastTime
			if e.delayedAt.After(last) {
				last = e.delayedAt // that interval's batch was delayed: the next one
			}
			t := e.batchTimeAfter(last, now)
			if wait := e.waitFor(t, now); wait > 0 {
				select {
				case <-e.opts.After(wait):
				case <-e.stopReq:
					return nil
				}
			}
			var err error
			p, err = e.plan(ctx, e.nextID, t)
			if errors.Is(err, errDelayed) {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, ErrDataLoss) {
					return fmt.Errorf("batch %d: %w", e.nextID, err)
				}
				e.log.Warn("cannot plan batch; retrying", "err", err)
				if !e.sleep(e.opts.RetryBackoff) {
					return nil
				}
				continue
			}
		}
		pre := next
		next = nil
		if err := e.runWithRetry(ctx, p, pre, func() { next = e.startPrefetch(preCtx, p) }, func() {
			if next != nil {
				<-next.done // the retry reads from the same connections
			}
		}); err != nil {
			if ctx.Err() != nil {
				return nil // aborted by Stop's deadline; the plan is replayed next start
			}
			return err
		}
	}
}

// prefetch is the next batch's plan (not yet persisted) and its records, read in the
// background while the current batch is processed.
type prefetch struct {
	plan    plan
	planned bool
	records []Record
	feed    *partitionFeed // the job's MapPartitions results, computed during the read
	err     error
	done    chan struct{} // closed when plan, records and err are set
}

// testHookPrefetched runs when a batch runs on prefetched records (tests).
var testHookPrefetched func(id int64)

// startPrefetch starts planning and reading the batch after cur in the background,
// at that batch's time, while cur is processed: when processing takes longer than
// the interval (a backlog), reading the next batch overlaps it instead of following
// it. The plan is what the loop would compute at that time once cur committed (the
// ranges start at cur's ends); it is persisted only when the batch's turn comes,
// after cur's commit, so the checkpoint sequence is unchanged. With backpressure the
// next batch waits for the rate estimate cur's processing produces, as before.
func (e *Engine) startPrefetch(ctx context.Context, cur plan) *prefetch {
	if e.opts.Backpressure || e.stopping() {
		return nil
	}
	ends := maps.Clone(e.ends)
	advanceEnds(ends, e.ids, cur)
	pf := &prefetch{done: make(chan struct{})}
	go func() {
		defer close(pf.done)
		now := e.opts.Now()
		t := e.batchTimeAfter(cur.BatchTime, now)
		if wait := e.waitFor(t, now); wait > 0 {
			select {
			case <-e.opts.After(wait):
			case <-e.stopReq:
				pf.err = errStopping
				return
			case <-ctx.Done():
				pf.err = ctx.Err()
				return
			}
		}
		p, err := e.planRanges(ctx, cur.BatchID+1, t, ends, cur.TopicIDs)
		if err != nil {
			pf.err = err
			return
		}
		pf.plan, pf.planned = p, true
		pf.records, pf.feed, pf.err = e.read(ctx, p)
	}()
	return pf
}

var errStopping = errors.New("stopping")

// waitFor is how long to wait for batch time t when the clock reads now: until t, but
// at most one interval. Longer means the clock stepped back behind the last batch
// (or that batch ran while the clock was ahead): waiting for the clock to catch up
// would stall the job for as long as the step; batch times stay in order.
func (e *Engine) waitFor(t, now time.Time) time.Duration {
	return min(t.Sub(now), e.job.interval)
}

// batchTimeAfter is the time of the batch after the one at last (zero: none) when the
// clock reads now: one interval after last, or the current tick when the engine fell
// behind (missed ticks are skipped, not queued) — but never past a slide time of the
// job's batch-time windows, which emit only on batches at those times: skipping one
// would drop its window's batches unemitted.
func (e *Engine) batchTimeAfter(last, now time.Time) time.Time {
	iv := e.job.interval
	// A multiple of the interval since the Unix epoch, as windows align: Truncate
	// counts from year 1 (the same only for intervals dividing 719162 days).
	t := alignDown(now, iv)
	if last.IsZero() {
		return t
	}
	if next := last.Add(iv); next.After(t) {
		return next
	}
	for _, slide := range e.job.slides {
		if b := alignDown(last, slide).Add(slide); b.Before(t) {
			t = b
		}
	}
	return t
}

// read reads batch p's records and, as each range arrives, runs the job's
// MapPartitions functions over it.
func (e *Engine) read(ctx context.Context, p plan) ([]Record, *partitionFeed, error) {
	info := BatchInfo{ID: p.BatchID, Time: p.BatchTime, Ranges: p.Ranges}
	feed := e.job.newFeed(info)
	var onRange func(int, []Record)
	if feed != nil {
		onRange = func(i int, recs []Record) { e.job.onRange(feed, info, i, recs) }
	}
	recs, err := e.src.read(ctx, p.Ranges, onRange)
	if err != nil {
		return nil, nil, err
	}
	return recs, feed, nil
}

// prefetchUsable waits for pf and says whether its batch can run: planned, and the
// engine is not stopping (a prefetched batch was never persisted: nothing to undo).
// A failed read is retried by the batch itself.
func (e *Engine) prefetchUsable(pf *prefetch) bool {
	select {
	case <-pf.done:
	case <-e.stopReq:
		return false
	}
	return pf.planned && !e.stopping()
}

func (e *Engine) sleep(d time.Duration) bool {
	select {
	case <-e.opts.After(d):
		return true
	case <-e.stopReq:
		return false
	}
}

// ParseStartingOffsets checks a StartingOffsets value (see Options).
func ParseStartingOffsets(s string) error {
	_, _, err := parseStartingOffsets(s)
	return err
}

// Spark's special offsets in a startingOffsets JSON.
const (
	startEarliest = -2
	startLatest   = -1
)

// parseStartingOffsets reads a StartingOffsets value: its time when it is one (zero for
// earliest and latest), or its offsets per partition when it is Spark's JSON.
func parseStartingOffsets(s string) (time.Time, map[TopicPartition]int64, error) {
	switch s {
	case "earliest", "latest":
		return time.Time{}, nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		var byTopic map[string]map[string]int64
		if err := json.Unmarshal([]byte(s), &byTopic); err != nil {
			return time.Time{}, nil, fmt.Errorf("starting offsets %q: want JSON such as {\"events\":{\"0\":23,\"1\":-2}}: %w", s, err)
		}
		offs := map[TopicPartition]int64{}
		for topic, parts := range byTopic {
			for p, off := range parts {
				n, err := strconv.ParseInt(p, 10, 32)
				if err != nil || n < 0 {
					return time.Time{}, nil, fmt.Errorf("starting offsets: topic %q: partition %q is not a partition number", topic, p)
				}
				if off < startEarliest {
					return time.Time{}, nil, fmt.Errorf("starting offsets: %s-%d: offset %d (want >= 0, or -2 earliest, -1 latest)", topic, n, off)
				}
				offs[TopicPartition{topic, int32(n)}] = off
			}
		}
		return time.Time{}, offs, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("starting offsets %q: want earliest, latest, an RFC 3339 time such as 2026-11-26T00:00:00Z, or offsets per partition such as {\"events\":{\"0\":23,\"1\":-2}}", s)
	}
	return t, nil, nil
}

// setTargets records, for AvailableNow, where each partition ends now.
func (e *Engine) setTargets(ctx context.Context) error {
	tps, err := e.src.partitions(ctx)
	if err != nil {
		return err
	}
	_, last, err := e.src.offsets(ctx, tps)
	if err != nil {
		return err
	}
	e.targets = last
	return nil
}

// caughtUp says whether, with AvailableNow, every partition has been read to its target.
func (e *Engine) caughtUp() bool {
	if e.targets == nil {
		return false
	}
	for tp, target := range e.targets {
		if end, ok := e.ends[tp]; !ok || end < target {
			return false
		}
	}
	return true
}

// plan computes and persists batch id's offset ranges; errDelayed when the batch waits
// for more records (MinRecordsPerBatch).
func (e *Engine) plan(ctx context.Context, id int64, t time.Time) (plan, error) {
	p, err := e.planRanges(ctx, id, t, e.ends, e.ids)
	if err != nil {
		return plan{}, err
	}
	if e.delay(p) {
		return plan{}, errDelayed
	}
	if err := e.cp.writePlan(p); err != nil {
		return plan{}, err
	}
	return p, nil
}

// errDelayed: the batch was not run, to wait for more records (MinRecordsPerBatch).
var errDelayed = errors.New("batch delayed for more records")

// delay says whether planned batch p waits for more records (MinRecordsPerBatch): it
// holds fewer, the last batch ran less than MaxTriggerDelay ago, and its time is no
// slide time of the job's batch-time windows. A delayed batch is recorded (delayedAt)
// so that the next interval's is planned next.
func (e *Engine) delay(p plan) bool {
	want := e.opts.MinRecordsPerBatch
	if want <= 0 || e.opts.AvailableNow || p.Ranges.Count() >= want || e.opts.Now().Sub(e.lastRun) >= e.opts.MaxTriggerDelay {
		return false
	}
	for _, slide := range e.job.slides {
		if alignDown(p.BatchTime, slide).Equal(p.BatchTime) {
			return false
		}
	}
	e.delayedAt = p.BatchTime
	e.met.delayed.Inc()
	e.log.Debug("batch delayed for more records", "batch_time", p.BatchTime, "records", p.Ranges.Count(), "min_records_per_batch", want)
	return true
}

// planRanges computes batch id's offset ranges, given the offsets the batches before
// it end at and their topics' ids (prevIDs; nil when unknown).
func (e *Engine) planRanges(ctx context.Context, id int64, t time.Time, ends map[TopicPartition]int64, prevIDs map[string]string) (plan, error) {
	tps, err := e.src.partitions(ctx)
	if err != nil {
		return plan{}, err
	}
	// The ids are asked for before the offsets: ranges are never planned on a topic
	// newer than the ids recorded with them (a topic recreated in between shows at the
	// next plan, whose ids differ). Nil when the broker gives none (today's behaviour).
	ids := e.src.topicIDs.get(ctx, topicsOf(tps, ends))
	recreated := map[string]bool{}
	for topic, prev := range prevIDs {
		if cur := ids[topic]; cur != "" && prev != "" && cur != prev {
			recreated[topic] = true
		}
	}
	lossRecreated := func(tp TopicPartition, pos int64) error {
		return e.dataLoss(DataLoss{TopicPartition: tp, Until: pos, PrevTopicID: prevIDs[tp.Topic], TopicID: ids[tp.Topic]})
	}
	first, last, err := e.src.offsets(ctx, tps)
	if err != nil {
		return plan{}, err
	}
	// "latest" or a time applies when the job starts from nothing; a partition that
	// appears later (topic grew, new topic) is read from its start, as Spark does.
	fresh := len(ends) == 0 && id == 0
	var at map[TopicPartition]int64
	if fresh && !e.startAt.IsZero() {
		if at, err = e.src.offsetsAt(ctx, tps, e.startAt); err != nil {
			return plan{}, err
		}
	}
	rs := make(Ranges, 0, len(tps))
	for _, tp := range tps {
		from, ok := ends[tp]
		if ok && recreated[tp.Topic] {
			// A new topic under the old name (a new topic id): the job's position is
			// the old one's. Its records are all new: read from its start, as a
			// partition that appears, even when it already holds more records than
			// the job had read (its end alone cannot tell).
			if err := lossRecreated(tp, from); err != nil {
				return plan{}, err
			}
			ok = false
		}
		if !ok {
			from = first[tp]
			switch {
			case !fresh:
				// A partition that appeared after the job started (or of a
				// recreated topic) is read from offset 0: records deleted below
				// its log start before it was seen are lost (the check below),
				// as Spark reports "Added partition starts from N instead of 0".
				from = 0
			case fresh && e.opts.StartingOffsets == "latest":
				from = last[tp]
			case at != nil:
				if off, found := at[tp]; found {
					from = max(off, first[tp])
				} else {
					from = last[tp] // no record at or after the time
				}
			case fresh && e.startOffsets != nil:
				// Given offsets: one below the log start is data loss (the check
				// below); one past the end starts at the end, as a Kafka consumer's
				// out-of-range position does with auto.offset.reset=latest.
				switch off, given := e.startOffsets[tp]; {
				case !given || off == startEarliest:
				case off == startLatest:
					from = last[tp]
				case off > last[tp]:
					e.log.Warn("starting offset past the partition's end; starting at the end", "partition", tp.String(), "offset", off, "end", last[tp])
					from = last[tp]
				default:
					from = off
				}
			}
		}
		until := last[tp]
		if e.targets != nil {
			// Available now: nothing past the end seen at start, no partition found later.
			target, known := e.targets[tp]
			if !known {
				continue
			}
			until = min(until, max(target, from))
		}
		if until < from {
			// The end moved below what was read: the topic was deleted and recreated
			// (most likely on one node) or its log truncated. Its records are all new:
			// read them from its start (Spark reads from its end, losing them too).
			if err := e.dataLoss(DataLoss{TopicPartition: tp, From: until, Until: from}); err != nil {
				return plan{}, err
			}
			from = first[tp]
		}
		if from < first[tp] {
			if err := e.dataLoss(DataLoss{TopicPartition: tp, From: from, Until: first[tp], Deleted: true}); err != nil {
				return plan{}, err
			}
			from = first[tp]
		}
		rs = append(rs, OffsetRange{tp.Topic, tp.Partition, from, until})
	}
	// A partition read before but missing from the metadata now (its topic briefly
	// answered with an error, e.g. during a leader election) keeps an empty range at
	// its end: the plan is all a restart knows of where each partition ended.
	// A recreated topic without that partition: the old one's is gone for good.
	for tp, off := range ends {
		if _, listed := last[tp]; !listed && e.src.sub.has(tp.Topic) {
			if recreated[tp.Topic] {
				if err := lossRecreated(tp, off); err != nil {
					return plan{}, err
				}
				continue
			}
			rs = append(rs, OffsetRange{tp.Topic, tp.Partition, off, off})
		}
	}
	rs.sort()
	total := 0.0
	if e.opts.Backpressure {
		total = e.rate * e.job.interval.Seconds()
	}
	if m := float64(e.opts.MaxRecordsPerBatch); m > 0 && (total == 0 || m < total) {
		total = m
	}
	capRanges(rs, e.opts.MaxRecordsPerPartition, e.opts.MaxRatePerPartition, total, e.job.interval)
	var lag int64
	for _, r := range rs {
		if end, ok := last[r.TP()]; ok {
			lag += end - r.Until
		}
	}
	e.met.lag.Set(float64(lag))
	return plan{BatchID: id, BatchTime: t, Ranges: rs, TopicIDs: planIDs(rs, recreated, ids, prevIDs)}, nil
}

// advanceEnds moves ends, the offsets the batches before p end at (their topic ids:
// ids), past batch p: to p's ends, less the partitions p no longer has of a topic it
// found recreated (its id differs): those were the old topic's.
func advanceEnds(ends map[TopicPartition]int64, ids map[string]string, p plan) {
	pe := p.Ranges.Ends()
	for tp := range ends {
		if _, ok := pe[tp]; !ok {
			if old, cur := ids[tp.Topic], p.TopicIDs[tp.Topic]; old != "" && cur != "" && old != cur {
				delete(ends, tp)
			}
		}
	}
	maps.Copy(ends, pe)
}

// topicsOf lists the topics of tps and ends, sorted.
func topicsOf(tps []TopicPartition, ends map[TopicPartition]int64) []string {
	var out []string
	for _, tp := range tps {
		out = append(out, tp.Topic)
	}
	for tp := range ends {
		out = append(out, tp.Topic)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// planIDs are the topic ids a plan records for the topics of its ranges rs and those
// found recreated (which may have none left): the broker's (ids), or for a topic it did
// not answer (the request failed, the topic is briefly missing) the last known one
// (prev), so that a recreation meanwhile is still seen when the ids come back.
func planIDs(rs Ranges, recreated map[string]bool, ids, prev map[string]string) map[string]string {
	var out map[string]string
	add := func(topic string) {
		id := ids[topic]
		if id == "" {
			id = prev[topic]
		}
		if id != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[topic] = id
		}
	}
	for _, r := range rs {
		add(r.Topic)
	}
	for topic := range recreated {
		add(topic)
	}
	return out
}

// checkPlanIDs is called before a planned batch is read again (replayed at start,
// retried after a failure): a topic of its plan deleted and recreated since it was
// planned would have the batch read the new topic's records at the old one's offsets,
// as if they were the old one's. With FailOnDataLoss the engine stops. Without it the
// batch runs as planned and the next plan sees the new id (and reads the new topic
// from its start, those records again); the gap is logged here, from the batch's
// start: the old topic's records from there on were never read (the next plan's
// warning starts at the batch's end).
func (e *Engine) checkPlanIDs(ctx context.Context, p plan) error {
	if len(p.TopicIDs) == 0 {
		return nil
	}
	ids := e.src.topicIDs.get(ctx, slices.Sorted(maps.Keys(p.TopicIDs)))
	for _, r := range p.Ranges {
		if prev, cur := p.TopicIDs[r.Topic], ids[r.Topic]; prev != "" && cur != "" && prev != cur {
			if err := e.dataLoss(DataLoss{TopicPartition: r.TP(), Until: r.From, PrevTopicID: prev, TopicID: cur}); err != nil {
				return err
			}
		}
	}
	return nil
}

// runWithRetry runs batch p until it commits. pre, when set, is p prefetched;
// prefetchNext is called once p's records are read, waitNext before a retry.
func (e *Engine) runWithRetry(ctx context.Context, p plan, pre *prefetch, prefetchNext, waitNext func()) error {
	for attempt := 0; ; attempt++ {
		if p.replay || attempt > 0 {
			if err := e.checkPlanIDs(ctx, p); err != nil {
				return fmt.Errorf("batch %d: %w", p.BatchID, err)
			}
		}
		err := e.runBatch(ctx, p, pre, prefetchNext)
		pre, prefetchNext = nil, func() {}
		if err == nil {
			return nil
		}
		waitNext()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.met.failures.Inc()
		// The operators may hold half a batch: go back to the last committed state.
		if rerr := e.restore(p.BatchID - 1); rerr != nil {
			return errors.Join(err, rerr)
		}
		if errors.Is(err, ErrDataLoss) {
			return fmt.Errorf("batch %d: %w", p.BatchID, err)
		}
		if e.opts.MaxRetries > 0 && attempt >= e.opts.MaxRetries {
			return fmt.Errorf("batch %d failed %d times: %w", p.BatchID, attempt+1, err)
		}
		wait := min(e.opts.RetryBackoff<<min(attempt, 16), 30*time.Second)
		e.log.Warn("batch failed; retrying", "batch", p.BatchID, "attempt", attempt+1, "in", wait, "err", err)
		select {
		case <-e.opts.After(wait):
		case <-e.stopReq:
			// Stopping: the batch is not committed and will be replayed on the next start.
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (e *Engine) runBatch(ctx context.Context, p plan, pre *prefetch, prefetchNext func()) error {
	start := e.opts.Now()
	var records []Record
	var feed *partitionFeed
	if pre != nil {
		<-pre.done
		if pre.err == nil && pre.plan.BatchID == p.BatchID {
			records, feed = pre.records, pre.feed
			if testHookPrefetched != nil {
				testHookPrefetched(p.BatchID)
			}
		} else {
			pre = nil // read it now (the error is reported by this read if it persists)
		}
	}
	if pre == nil {
		var err error
		if records, feed, err = e.read(ctx, p); err != nil {
			return err
		}
	}
	prefetchNext()
	info := BatchInfo{ID: p.BatchID, Time: p.BatchTime, Ranges: p.Ranges}
	if err := e.job.runBatch(ctx, info, records, feed); err != nil {
		return err
	}
	if len(e.job.stateful) > 0 {
		st, full, err := e.snapshotStates()
		if err != nil {
			return err
		}
		if err := e.cp.writeState(p.BatchID, st, full); err != nil {
			e.fullBytes = 0 // the chain on disk may miss this batch: start a new one
			return err
		}
	}
	n := int64(len(records))
	if err := e.cp.writeCommit(commitInfo{BatchID: p.BatchID, CommittedAt: e.opts.Now(), Records: n}); err != nil {
		return err
	}
	end := e.opts.Now()
	// Committed: advance.
	replayed := p.replay
	advanceEnds(e.ends, e.ids, p)
	e.ids = p.TopicIDs
	e.lastRun, e.delayedAt = start, time.Time{}
	e.nextID = p.BatchID + 1
	e.lastTime = p.BatchTime
	e.cp.prune(p.BatchID)
	if err := e.src.commitGroup(ctx, p.Ranges.Ends()); err != nil {
		e.log.Debug("consumer group commit failed (informational only)", "err", err)
	}
	proc := end.Sub(start)
	sched := start.Sub(p.BatchTime)
	if sched < 0 {
		sched = 0
	}
	if e.opts.Backpressure {
		if r, ok := e.pid.compute(p.BatchTime, n, proc, sched); ok {
			e.rate = r
		}
	}
	m := BatchMetrics{
		Pipeline: e.job.name, ID: p.BatchID, Time: p.BatchTime, Records: n,
		InputRate:      float64(n) / e.job.interval.Seconds(),
		ProcessingTime: proc, SchedulingDelay: sched,
		Lag: int64(e.met.lagValue()), RateLimit: e.rate, Replayed: replayed, Ranges: p.Ranges,
	}
	e.met.observe(m)
	e.mu.Lock()
	e.recent = append(e.recent, m)
	if len(e.recent) > 100 {
		e.recent = e.recent[len(e.recent)-100:]
	}
	recent := append([]BatchMetrics(nil), e.recent[max(0, len(e.recent)-20):]...)
	e.mu.Unlock()
	if err := writeStatus(e.cp.dir, recent); err != nil {
		e.log.Debug("cannot write status", "err", err)
	}
	if e.opts.OnBatch != nil {
		e.opts.OnBatch(m)
	}
	e.log.Debug("batch committed", "batch", p.BatchID, "records", n, "processing", proc)
	return nil
}
