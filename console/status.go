package console

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/internal/grouplag"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Status is one picture of the whole pipeline; the console pages and `tagpipe status`
// render it. A panel whose source failed carries its error in Errors and stays empty.
type Status struct {
	Time      time.Time         `json:"time"`
	Topics    []Topic           `json:"topics"`
	Groups    []Group           `json:"groups"`
	Ingest    []MetricRow       `json:"ingest"`
	Streaming []Batch           `json:"streaming"`
	Jobs      []JobRun          `json:"jobs"`
	Pools     []JobPool         `json:"pools"`
	Tags      []TagStat         `json:"tags"`
	Weights   []Bucket          `json:"weights"`
	Errors    map[string]string `json:"errors,omitempty"`
	// TagsNote says why the tag panels are empty when there is nothing wrong: no tag
	// job has run yet on this data dir.
	TagsNote string `json:"tags_note,omitempty"`
}

// Topic is one topic's partitions and offsets.
type Topic struct {
	Name       string      `json:"name"`
	Partitions []Partition `json:"partitions"`
	Records    int64       `json:"records"`
	// Rate is records/s appended since the previous sample (0 on the first).
	Rate float64 `json:"rate"`
}

// Partition is one partition's offset range.
type Partition struct {
	ID    int32 `json:"id"`
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Group is one consumer group with its lag.
type Group struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Members    int        `json:"members"`
	Lag        int64      `json:"lag"`
	Partitions []GroupLag `json:"partitions"`
}

// GroupLag is a group's position on one partition.
type GroupLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member"`
}

// MetricRow is one series of a tagpipe_ingest_* metric.
type MetricRow struct {
	Name   string  `json:"name"`
	Labels string  `json:"labels"`
	Value  float64 `json:"value"`
	Help   string  `json:"help"`
}

// Batch is one completed streaming micro-batch.
type Batch struct {
	Pipeline        string        `json:"pipeline"`
	ID              int64         `json:"id"`
	Time            time.Time     `json:"time"`
	Records         int64         `json:"records"`
	InputRate       float64       `json:"input_rate"`
	ProcessingTime  time.Duration `json:"processing_time"`
	SchedulingDelay time.Duration `json:"scheduling_delay"`
}

// JobRun is one scheduled job run.
type JobRun struct {
	Job     string    `json:"job"`
	DS      string    `json:"ds"`
	State   string    `json:"state"`
	Attempt int       `json:"attempt"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Rows    int64     `json:"rows"`
	Error   string    `json:"error,omitempty"`
}

// JobPool is one job pool's slots (Airflow's pools), as /v1/jobs "pools" and `tagpipe
// jobs pools` show it.
type JobPool struct {
	Name  string `json:"name"`
	Slots int    `json:"slots"`
	// Shared: the slots are shared by every process on the data dir (a pool sized in
	// jobs.pools); otherwise Used counts the console's own scheduler's runs only.
	Shared bool `json:"shared"`
	Used   int  `json:"used"`
	// Open is Slots - Used (negative after a shrink while earlier runs go on).
	Open   int `json:"open"`
	Queued int `json:"queued"`
	// Holders say who holds a shared pool's slots ("slot-<i>: host:pid job/ts").
	Holders []string `json:"holders,omitempty"`
}

// TagStat is one tag's reach on the latest day of ads_user_interest_tags.
type TagStat struct {
	Tag       string  `json:"tag"`
	Users     int64   `json:"users"`
	AvgWeight float64 `json:"avg_weight"`
}

// Bucket is one bar of the tag-weight histogram.
type Bucket struct {
	Label string `json:"label"`
	Count int64  `json:"count"`
}

// Table is a SQL result as the console shows it.
type Table struct {
	Columns []string
	Rows    [][]any
}

// Options are the console's data sources; any may be nil, and its panels say so.
type Options struct {
	// Bootstrap are Kafka brokers for the topic and group panels; Security their TLS and
	// SASL (nil: PLAINTEXT).
	Bootstrap []string
	Security  *kafkasec.Security
	// Gatherer is the process's metrics registry (collector panel).
	Gatherer prometheus.Gatherer
	// Query runs a read-only SQL statement (tag panels, user lookup, SQL box).
	Query func(ctx context.Context, sql string, args ...any) (*Table, error)
	// Batches returns recent streaming batches, oldest first.
	Batches func() []Batch
	// Why explains a user's tags: per tag, the events that contributed most (from the
	// tagging model). Without it the user page lists the user's recent events.
	Why func(ctx context.Context, user string) (*Table, error)
	// JobRuns returns recent job runs, newest first.
	JobRuns func(ctx context.Context, limit int) ([]JobRun, error)
	// JobPools returns the job pools, default_pool first (jobs panel).
	JobPools func(ctx context.Context) ([]JobPool, error)
}

// Console gathers Status and serves the pages.
type Console struct {
	opts Options

	mu        sync.Mutex
	client    *kgo.Client
	lastEnds  map[string]int64
	lastTaken time.Time
}

// New returns a console; Close releases its Kafka client.
func New(opts Options) *Console { return &Console{opts: opts} }

// Close releases the Kafka client; safe twice.
func (c *Console) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
}

func (c *Console) admin() (*kadm.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		cl, err := kgo.NewClient(append(c.opts.Security.KgoOpts(), kgo.SeedBrokers(c.opts.Bootstrap...), kgo.RequestRetries(1))...)
		if err != nil {
			return nil, err
		}
		c.client = cl
	}
	return kadm.NewClient(c.client), nil
}

// The panels of a Status, named as in Status.Errors.
const (
	panelBroker    = "broker" // topics and consumer groups
	panelIngest    = "ingest"
	panelStreaming = "streaming"
	panelJobs      = "jobs"
	panelTags      = "tags"
)

var allPanels = []string{panelBroker, panelIngest, panelStreaming, panelJobs, panelTags}

// Status gathers every panel, each with its own error.
func (c *Console) Status(ctx context.Context) *Status { return c.status(ctx, allPanels...) }

// status gathers the named panels only.
func (c *Console) status(ctx context.Context, panels ...string) *Status {
	st := &Status{Time: time.Now(), Errors: map[string]string{}}
	fail := func(panel string, err error) { st.Errors[panel] = err.Error() }
	for _, p := range panels {
		switch p {
		case panelBroker:
			if len(c.opts.Bootstrap) == 0 {
				fail(p, fmt.Errorf("no Kafka bootstrap servers configured"))
			} else if err := c.kafkaPanels(ctx, st); err != nil {
				fail(p, err)
			}
		case panelIngest:
			if c.opts.Gatherer != nil {
				rows, err := gatherPrefix(c.opts.Gatherer, "tagpipe_ingest_")
				if err != nil {
					fail(p, err)
				}
				st.Ingest = rows
			}
		case panelStreaming:
			if c.opts.Batches != nil {
				st.Streaming = c.opts.Batches()
			}
		case panelJobs:
			if c.opts.JobRuns != nil {
				runs, err := c.opts.JobRuns(ctx, 50)
				if err != nil {
					fail(p, err)
				}
				st.Jobs = runs
			}
			if c.opts.JobPools != nil {
				pools, err := c.opts.JobPools(ctx)
				if err != nil {
					fail(p, err)
				}
				st.Pools = pools
			}
		case panelTags:
			if c.opts.Query != nil {
				if err := c.tagPanels(ctx, st); err != nil {
					fail(p, err)
				}
			}
		}
	}
	return st
}

func (c *Console) kafkaPanels(ctx context.Context, st *Status) error {
	adm, err := c.admin()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("cannot list topics: %w", err)
	}
	names := topics.Names()
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot list end offsets: %w", err)
	}
	now := time.Now()
	c.mu.Lock()
	prev, prevT := c.lastEnds, c.lastTaken
	c.lastEnds, c.lastTaken = map[string]int64{}, now
	for _, name := range names {
		t := Topic{Name: name}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic != name {
				return
			}
			s, _ := starts.Lookup(o.Topic, o.Partition)
			t.Partitions = append(t.Partitions, Partition{ID: o.Partition, Start: s.Offset, End: o.Offset})
			t.Records += o.Offset - s.Offset
		})
		sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i].ID < t.Partitions[j].ID })
		var end int64
		for _, p := range t.Partitions {
			end += p.End
		}
		c.lastEnds[name] = end
		if p, ok := prev[name]; ok && now.After(prevT) {
			t.Rate = float64(end-p) / now.Sub(prevT).Seconds()
		}
		st.Topics = append(st.Topics, t)
	}
	c.mu.Unlock()

	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("cannot list groups: %w", err)
	}
	if len(groups) == 0 {
		return nil
	}
	lags, err := adm.Lag(ctx, groups.Groups()...)
	if err != nil {
		return fmt.Errorf("cannot compute lag: %w", err)
	}
	// kadm's Lag describes groups with DescribeGroups, which answers a KIP-848 consumer
	// group Dead (Kafka 4, and this broker); those are described with
	// ConsumerGroupDescribe instead, which answers a classic group GROUP_ID_NOT_FOUND.
	consumers := grouplag.Describe(ctx, adm, groups.Groups()...)
	for _, name := range groups.Groups() {
		if d, ok := consumers[name]; ok {
			g, err := consumerGroup(ctx, adm, d)
			if err != nil {
				return err
			}
			st.Groups = append(st.Groups, g)
			continue
		}
		l, ok := lags[name]
		if !ok {
			continue
		}
		g := Group{Name: name, State: l.State, Members: len(l.Members), Lag: l.Lag.Total()}
		for _, m := range l.Lag.Sorted() {
			gl := GroupLag{Topic: m.Topic, Partition: m.Partition, Committed: m.Commit.At, End: m.End.Offset, Lag: m.Lag}
			if m.Member != nil {
				gl.Member = m.Member.ClientID
			}
			g.Partitions = append(g.Partitions, gl)
		}
		st.Groups = append(st.Groups, g)
	}
	sort.Slice(st.Groups, func(i, j int) bool { return st.Groups[i].Name < st.Groups[j].Name })
	return nil
}

// consumerGroup is a KIP-848 consumer group's row: its members and lag per partition,
// each with its owner's client id.
func consumerGroup(ctx context.Context, adm *kadm.Client, d kadm.DescribedConsumerGroup) (Group, error) {
	lag, owners, err := grouplag.Consumer(ctx, adm, d)
	if err != nil {
		return Group{}, err
	}
	g := Group{Name: d.Group, State: d.State, Members: len(d.Members), Lag: lag.Total()}
	for _, m := range lag.Sorted() {
		gl := GroupLag{Topic: m.Topic, Partition: m.Partition, Committed: m.Commit.At, End: m.End.Offset, Lag: m.Lag}
		if o := owners[grouplag.TP{Topic: m.Topic, Partition: m.Partition}]; o != nil {
			gl.Member = o.ClientID
		}
		g.Partitions = append(g.Partitions, gl)
	}
	return g, nil
}

func gatherPrefix(g prometheus.Gatherer, prefix string) ([]MetricRow, error) {
	fams, err := g.Gather()
	var rows []MetricRow
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), prefix) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			rows = append(rows, MetricRow{Name: f.GetName(), Labels: strings.Join(labels, ","), Value: metricValue(m), Help: f.GetHelp()})
		}
	}
	return rows, err
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.GetSummary() != nil:
		return float64(m.GetSummary().GetSampleCount())
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// latestTags is the latest day of the interest-tag table.
const latestTags = `(SELECT * FROM ads_user_interest_tags WHERE dt = (SELECT max(dt) FROM ads_user_interest_tags))`

// noTagsYet is the tags panels' note on a data dir the tag job has not run on.
const noTagsYet = "no interest tags yet: the tag job has not run (tagpipe tags run --ds YYYY-MM-DD, or wait for tags_nightly)"

func (c *Console) tagPanels(ctx context.Context, st *Status) error {
	// A fresh install has no ads_user_interest_tags table until the first tag run: that
	// is no error, and says what to do.
	ex, err := c.opts.Query(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name = 'ads_user_interest_tags'`)
	if err != nil {
		return err
	}
	if len(ex.Rows) == 0 || toInt(ex.Rows[0][0]) == 0 {
		st.TagsNote = noTagsYet
		return nil
	}
	t, err := c.opts.Query(ctx, `SELECT tag, count(DISTINCT user_id) AS users, avg(weight) AS w FROM `+latestTags+` GROUP BY tag ORDER BY users DESC, tag LIMIT 20`)
	if err != nil {
		return err
	}
	for _, r := range t.Rows {
		st.Tags = append(st.Tags, TagStat{Tag: fmt.Sprint(r[0]), Users: toInt(r[1]), AvgWeight: toFloat(r[2])})
	}
	h, err := c.opts.Query(ctx, `SELECT least(floor(weight * 10), 9)::INT AS b, count(*) FROM `+latestTags+` GROUP BY b ORDER BY b`)
	if err != nil {
		return err
	}
	counts := make([]int64, 10)
	for _, r := range h.Rows {
		if b := toInt(r[0]); b >= 0 && b < 10 {
			counts[b] = toInt(r[1])
		}
	}
	for i, n := range counts {
		st.Weights = append(st.Weights, Bucket{Label: fmt.Sprintf("%.1f–%.1f", float64(i)/10, float64(i+1)/10), Count: n})
	}
	return nil
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint64:
		return int64(x)
	case float64:
		return int64(x)
	}
	var n int64
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int64:
		return float64(x)
	}
	var f float64
	fmt.Sscan(fmt.Sprint(v), &f)
	return f
}
