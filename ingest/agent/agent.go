// Package agent wires a collector agent from its Spec: channels, sources with their
// interceptors and selectors, sinks and sink groups, and runs them as one lifecycle
// component (sources stop first, then sinks finish their batch, then channels close).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/execsrc"
	"github.com/tagpipe/tagpipe/ingest/interceptor"
	"github.com/tagpipe/tagpipe/ingest/kafkasrc"
	"github.com/tagpipe/tagpipe/ingest/sink"
	"github.com/tagpipe/tagpipe/ingest/spooldir"
	"github.com/tagpipe/tagpipe/ingest/taildir"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Env is what every agent shares.
type Env struct {
	// DataDir is where default channel, tracker and position paths go (below ingest/<agent>/).
	DataDir string
	// Brokers and Topic are the kafka sink defaults; Brokers and Security the kafka
	// sources' and sinks' (a component setting any security key has its own instead).
	Brokers  []string
	Security kafkasec.Config
	Topic    string
	Log      *slog.Logger
	Metrics  *ingest.Metrics
}

// Source is a running source.
type Source interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Agent is one built agent.
type Agent struct {
	name     string
	env      Env
	channels map[string]ingest.Channel
	// broken: channels of the spec that failed to build. Their own error is reported;
	// the sources and sinks naming them are not also told there is no such channel.
	broken  map[string]bool
	sources []Source
	runners []*ingest.SinkRunner
	sinks   []ingest.Sink
	// kafkaSinks are the kafka sinks built, for the kafka sources' loop guard.
	kafkaSinks []kafkaSinkEnd

	// check: Check's dry run, which builds nothing that opens, listens or writes.
	check bool

	stop, hard context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once
}

// Name implements lifecycle.Component.
func (a *Agent) Name() string { return "ingest/" + a.name }

// Source returns a source by name (tests ask socket sources for their address).
func (a *Agent) Source(name string) Source {
	for _, s := range a.sources {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Channel returns a channel by name (tests, status).
func (a *Agent) Channel(name string) ingest.Channel { return a.channels[name] }

// Build checks the whole spec (every error is reported, keys named) and opens channels.
func Build(spec Spec, env Env) (*Agent, error) {
	return buildAgent(spec, env, false)
}

// Check reports what Build would of the spec's keys and values (every error, keys named)
// without opening, creating or replaying anything: no channel file, position file,
// listener or client. A process checks every agent so before it opens any of them.
func Check(spec Spec, env Env) error {
	env.Metrics = nil
	_, err := buildAgent(spec, env, true)
	return err
}

func buildAgent(spec Spec, env Env, check bool) (*Agent, error) {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{name: spec.Name, env: env, channels: map[string]ingest.Channel{}, broken: map[string]bool{}, check: check}
	var errs []error
	where := func(kind, name string) string { return spec.Where + "." + kind + "." + name }
	if len(spec.Sources) == 0 {
		errs = append(errs, fmt.Errorf("%s: an agent needs at least one source", spec.Where))
	}
	for _, name := range sortedKeys(spec.Channels) {
		p := newProps(where("channels", name), spec.Channels[name])
		ch, err := a.buildChannel(name, p)
		if err != nil {
			errs = append(errs, err)
			a.broken[name] = true
			continue
		}
		a.channels[name] = ch
	}
	// Sinks, then groups that take sinks over.
	built := map[string]ingest.Sink{}
	sinkType := map[string]string{}
	sinkChan := map[string]string{}
	sinkBatch := map[string]int{}
	for _, name := range sortedKeys(spec.Sinks) {
		p := newProps(where("sinks", name), spec.Sinks[name])
		s, ch, batch, err := a.buildSink(name, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		built[name], sinkChan[name], sinkBatch[name] = s, ch, batch
		sinkType[name] = strings.ToLower(spec.Sinks[name]["type"])
		if !check {
			a.sinks = append(a.sinks, s)
		}
	}
	grouped := map[string]bool{}
	for _, gname := range sortedKeys(spec.SinkGroups) {
		p := newProps(where("sinkgroups", gname), spec.SinkGroups[gname])
		members := p.List("sinks")
		typ := p.OneOf("processor.type", "failover", "failover", "load_balance", "default")
		prios := p.Sub("processor.priority.")
		maxPen := p.Dur("processor.max_penalty", 30*time.Second, time.Millisecond)
		selector := p.OneOf("processor.selector", "round_robin", "round_robin", "random")
		backoff := p.Bool("processor.backoff", false)
		maxTimeOut := p.Dur("processor.selector.max_timeout", 30*time.Second, time.Millisecond)
		if len(members) == 0 {
			p.fail("sinks", "is required")
		}
		var ss []ingest.Sink
		var pr []int
		ch := ""
		for _, m := range members {
			s, ok := built[m]
			if !ok {
				p.fail("sinks", "no sink %q", m)
				continue
			}
			if grouped[m] {
				p.fail("sinks", "sink %q is already in another group", m)
			}
			if ch != "" && sinkChan[m] != ch {
				p.fail("sinks", "sinks of one group must read the same channel (%s reads %s, not %s)", m, sinkChan[m], ch)
			}
			ch = sinkChan[m]
			grouped[m] = true
			ss = append(ss, s)
			var n int64
			if v, ok := prios[m]; ok {
				fmt.Sscan(v, &n)
			}
			pr = append(pr, int(n))
		}
		if err := p.Err("sink group"); err != nil {
			errs = append(errs, err)
			continue
		}
		if typ == "default" && len(ss) != 1 {
			errs = append(errs, fmt.Errorf("%s.processor.type: default takes exactly one sink", p.where))
			continue
		}
		switch {
		case len(ss) == 0:
		case typ == "load_balance":
			a.addRunner(sink.NewLoadBalance(gname, ss, selector, backoff, maxTimeOut, env.Log), "load_balance", ch, sinkBatch[members[0]])
		default:
			a.addRunner(sink.NewFailover(gname, ss, pr, maxPen, env.Log), "failover", ch, sinkBatch[members[0]])
		}
	}
	for _, name := range sortedKeys(built) {
		if !grouped[name] {
			a.addRunner(built[name], sinkType[name], sinkChan[name], sinkBatch[name])
		}
	}
	for _, name := range sortedKeys(spec.Sources) {
		p := newProps(where("sources", name), spec.Sources[name])
		src, err := a.buildSource(name, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.sources = append(a.sources, src)
	}
	if check {
		return nil, joinErrs(errs) // nothing was opened
	}
	if len(errs) > 0 {
		a.closeAll()
		return nil, joinErrs(errs)
	}
	return a, nil
}

func (a *Agent) addRunner(s ingest.Sink, typ, ch string, batch int) {
	c := a.channels[ch]
	if c == nil || a.check {
		return // reported by buildSink
	}
	a.runners = append(a.runners, &ingest.SinkRunner{Agent: a.name, Channel: c, Sink: s, BatchSize: batch,
		C: a.env.Metrics.Component(a.name, "sink", s.Name(), typ), M: a.env.Metrics, Log: a.env.Log})
}

func (a *Agent) dir(elem ...string) string {
	return filepath.Join(append([]string{a.env.DataDir, "ingest", a.name}, elem...)...)
}

func (a *Agent) buildChannel(name string, p *Props) (ingest.Channel, error) {
	typ := strings.ToLower(p.Required("type"))
	var ch ingest.Channel
	switch typ {
	case "memory":
		o := channel.MemoryOptions{Capacity: int(p.Int("capacity", 10000)), CapacityBytes: p.Int("capacity_bytes", 0)}
		p.Int("transaction_capacity", 0)
		if err := p.Err("memory channel"); err != nil {
			return nil, err
		}
		ch = channel.NewMemory(name, o)
	case "file":
		o := channel.DefaultFileOptions(p.Str("dir", a.dir(name)))
		o.Capacity = int(p.Int("capacity", 0))
		o.CapacityBytes = p.Int("capacity_bytes", o.CapacityBytes)
		o.MaxFileBytes = p.Int("max_file_bytes", o.MaxFileBytes)
		o.MinFreeBytes = p.Int("min_free_bytes", o.MinFreeBytes)
		o.CheckpointInterval = p.Dur("checkpoint_interval", o.CheckpointInterval, time.Millisecond)
		o.SyncCommits = p.Bool("sync_commits", false)
		o.NoSync = !p.Bool("fsync", true)
		p.Int("transaction_capacity", 0)
		o.Log = a.env.Log
		if err := p.Err("file channel"); err != nil {
			return nil, err
		}
		if a.check {
			return channel.NewMemory(name, channel.MemoryOptions{Capacity: 1}), nil // stands for it: not opened
		}
		f, err := channel.OpenFile(name, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.where, err)
		}
		ch = f
	case "":
		return nil, p.Err("channel")
	default:
		p.fail("type", "unsupported channel type %q (want memory or file)", typ)
		return nil, p.Err("channel")
	}
	c := a.env.Metrics.Component(a.name, "channel", name, typ)
	c.Gauges = func() map[string]float64 {
		st := ch.Stats()
		return map[string]float64{"events": float64(st.Events), "bytes": float64(st.Bytes), "capacity_bytes": float64(st.CapacityBytes)}
	}
	return ch, nil
}

func (a *Agent) buildSink(name string, p *Props) (ingest.Sink, string, int, error) {
	typ := strings.ToLower(p.Required("type"))
	chName := p.Required("channel")
	if chName != "" && a.channels[chName] == nil && !a.broken[chName] {
		p.fail("channel", "no channel %q", chName)
	}
	batch := int(p.Int("batch_size", 1000))
	var s ingest.Sink
	var err error
	switch typ {
	case "kafka":
		o := sink.DefaultKafkaOptions()
		o.Brokers = p.List("brokers")
		if len(o.Brokers) == 0 {
			o.Brokers = a.env.Brokers
		}
		o.Security = a.kafkaSecurity(p)
		o.Topic = p.Str("topic", a.env.Topic)
		o.KeyHeader = p.Str("key_header", o.KeyHeader)
		o.DeadLetterTopic = p.Str("dead_letter_topic", "")
		o.BatchSize = batch
		o.BatchBytes = p.Int("batch_bytes", o.BatchBytes)
		o.Linger = p.Dur("linger", o.Linger, time.Millisecond)
		o.Compression = p.OneOf("compression", "none", "none", "gzip", "snappy", "lz4", "zstd")
		o.WriteTimeout = p.Dur("write_timeout", o.WriteTimeout, time.Millisecond)
		o.MaxAttempts = int(p.Int("max_attempts", int64(o.MaxAttempts)))
		o.NoRecordHeaders = !p.Bool("record_headers", true)
		o.NoAutoCreateTopics = !p.Bool("auto_create_topics", true)
		o.Log = a.env.Log
		if err := p.Err("kafka sink"); err != nil {
			return nil, "", 0, err
		}
		a.kafkaSinks = append(a.kafkaSinks, kafkaSinkEnd{name: name, channel: chName, brokers: o.Brokers,
			topics: []string{o.Topic, o.DeadLetterTopic}})
		if !a.check {
			s, err = sink.NewKafka(name, o)
		}
	case "logger":
		mb := int(p.Int("max_bytes", 16))
		if err := p.Err("logger sink"); err != nil {
			return nil, "", 0, err
		}
		s = sink.NewLogger(name, a.env.Log, mb)
	case "file_roll":
		o := sink.FileRollOptions{Dir: p.Str("dir", a.dir(name)), RollInterval: p.Dur("roll_interval", 30*time.Second, time.Second), Sync: p.Bool("sync", false)}
		if err := p.Err("file_roll sink"); err != nil {
			return nil, "", 0, err
		}
		if !a.check {
			s, err = sink.NewFileRoll(name, o)
		}
	case "http":
		o := sink.HTTPOptions{Endpoint: p.Required("endpoint"), Gzip: p.Bool("gzip", false),
			RequestTimeout: p.Dur("request_timeout", 30*time.Second, time.Millisecond)}
		if err := p.Err("http sink"); err != nil {
			return nil, "", 0, err
		}
		if !a.check {
			s, err = sink.NewHTTP(name, o)
		}
	case "":
		return nil, "", 0, p.Err("sink")
	default:
		p.fail("type", "unsupported sink type %q (want kafka, http, logger or file_roll)", typ)
		return nil, "", 0, p.Err("sink")
	}
	if err != nil {
		return nil, "", 0, fmt.Errorf("%s: %w", p.where, err)
	}
	return s, chName, batch, nil
}

// processor builds the channel processor of a source: channels, selector, interceptors.
func (a *Agent) processor(name, typ string, p *Props) *ingest.Processor {
	proc := &ingest.Processor{C: a.env.Metrics.Component(a.name, "source", name, typ)}
	chNames := p.List("channels")
	if len(chNames) == 0 {
		p.fail("channels", "is required")
	}
	index := map[string]int{}
	for i, c := range chNames {
		ch := a.channels[c]
		if ch == nil {
			if !a.broken[c] {
				p.fail("channels", "no channel %q", c)
			}
			continue
		}
		index[c] = i
		proc.Channels = append(proc.Channels, ch)
	}
	idx := func(key string, names []string) []int {
		var out []int
		for _, n := range names {
			i, ok := index[n]
			if !ok && a.broken[n] {
				continue // its own error is reported
			}
			if !ok {
				p.fail(key, "channel %q is not one of the source's channels", n)
				continue
			}
			out = append(out, i)
		}
		return out
	}
	switch p.OneOf("selector.type", "replicating", "replicating", "multiplexing") {
	case "replicating":
		if p.Has("selector.optional") {
			opt := idx("selector.optional", p.List("selector.optional"))
			isOpt := map[int]bool{}
			for _, i := range opt {
				isOpt[i] = true
			}
			r := &ingest.Replicating{Optional: opt}
			for i := range proc.Channels {
				if !isOpt[i] {
					r.Required = append(r.Required, i)
				}
			}
			proc.Selector = r
		}
	case "multiplexing":
		m := &ingest.Multiplexing{Header: p.Required("selector.header"), Mapping: map[string][]int{}, Optional: map[string][]int{}}
		for v, list := range p.Sub("selector.mapping.") {
			m.Mapping[v] = idx("selector.mapping."+v, strings.Fields(list))
		}
		for v, list := range p.Sub("selector.optional.") {
			m.Optional[v] = idx("selector.optional."+v, strings.Fields(list))
		}
		m.Default = idx("selector.default", p.List("selector.default"))
		proc.Selector = m
	}
	for _, in := range p.List("interceptors") {
		c := p.Child("interceptors." + in + ".")
		ic := buildInterceptor(c)
		if err := c.Err("interceptor"); err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		proc.Interceptors = append(proc.Interceptors, ic)
	}
	return proc
}

func buildInterceptor(p *Props) ingest.Interceptor {
	switch typ := strings.ToLower(p.Required("type")); typ {
	case "timestamp":
		return &interceptor.Timestamp{Header: p.Str("header", "timestamp"), PreserveExisting: p.Bool("preserve_existing", false)}
	case "host":
		h, err := interceptor.NewHost(p.Str("header", "host"), p.Bool("use_ip", false), p.Bool("preserve_existing", false))
		if err != nil {
			p.fail("type", "%v", err)
		}
		return h
	case "static":
		return &interceptor.Static{Key: p.Str("key", "key"), Value: p.Str("value", "value"), PreserveExisting: p.Bool("preserve_existing", true)}
	case "regex_filter":
		re := p.Regexp("regex")
		if re == nil {
			p.fail("regex", "is required")
		}
		return &interceptor.RegexFilter{Re: re, Exclude: p.Bool("exclude_events", false)}
	case "regex_extractor":
		re := p.Regexp("regex")
		if re == nil {
			p.fail("regex", "is required")
		}
		var names []string
		for _, s := range p.List("serializers") {
			names = append(names, p.Required("serializers."+s+".name"))
		}
		return &interceptor.RegexExtractor{Re: re, Names: names}
	case "search_replace":
		re := p.Regexp("search_pattern")
		if re == nil {
			p.fail("search_pattern", "is required")
		}
		return &interceptor.SearchReplace{Re: re, Replace: []byte(p.Str("replace_string", ""))}
	case "remove_header":
		r := &interceptor.RemoveHeader{Names: p.List("from_list"), Matching: p.Regexp("matching")}
		if n := p.Str("with_name", ""); n != "" {
			r.Names = append(r.Names, n)
		}
		if r.Matching != nil {
			r.Matching = ingest.WholeMatch(r.Matching) // the whole name
		}
		if len(r.Names) == 0 && r.Matching == nil {
			p.fail("with_name", "with_name, from_list or matching is required")
		}
		return r
	case "uuid":
		return &interceptor.UUID{Header: p.Str("header", "id"), PreserveExisting: p.Bool("preserve_existing", true)}
	case "user_key":
		u, err := interceptor.NewUserKey(interceptor.UserKeyOptions{Format: p.Str("format", "auto"), Field: p.Str("field", ""), Columns: p.List("columns")})
		if err != nil {
			p.fail("format", "%v", err)
		}
		return u
	case "":
		return nil
	default:
		p.fail("type", "unsupported interceptor type %q (want timestamp, host, static, regex_filter, regex_extractor, search_replace, remove_header, uuid or user_key)", typ)
		return nil
	}
}

func (a *Agent) buildSource(name string, p *Props) (Source, error) {
	typ := strings.ToLower(p.Required("type"))
	proc := a.processor(name, typ, p)
	var src Source
	var err error
	switch typ {
	case "spooldir":
		o := spooldir.DefaultOptions(p.Required("dir"))
		o.Recursive = p.Bool("recursive", false)
		o.Include = p.Regexp("include")
		o.Ignore = p.Regexp("ignore")
		o.CompletedSuffix = p.Str("completed_suffix", o.CompletedSuffix)
		o.Delete = p.OneOf("delete_policy", "never", "never", "immediate") == "immediate"
		p.OneOf("consume_order", "oldest", "oldest")
		o.MinAge = p.Dur("min_age", o.MinAge, time.Millisecond)
		o.PollInterval = p.Dur("poll_interval", o.PollInterval, time.Millisecond)
		o.BatchSize = int(p.Int("batch_size", int64(o.BatchSize)))
		o.MaxLineBytes = int(p.Int("max_line_bytes", int64(o.MaxLineBytes)))
		o.TrackerDir = p.Str("tracker_dir", a.dir())
		o.FileHeader = p.Bool("file_header", false)
		o.BasenameHeader = p.Bool("basename_header", false)
		o.Log, o.C = a.env.Log, proc.C
		if err := p.Err("spooldir source"); err != nil {
			return nil, err
		}
		if !a.check {
			src, err = spooldir.New(name, o, proc)
		}
	case "taildir":
		o := taildir.DefaultOptions()
		groups := p.List("filegroups")
		if len(groups) == 0 {
			p.fail("filegroups", "is required")
		}
		for _, g := range groups {
			pat := p.Required("filegroups." + g)
			if pat != "" {
				if err := taildir.CheckPattern(pat); err != nil {
					p.fail("filegroups."+g, "%v", err)
				}
			}
			o.Groups = append(o.Groups, taildir.Group{Name: g, Pattern: pat, Headers: p.Sub("headers." + g + ".")})
		}
		o.PositionFile = p.Str("position_file", a.dir(name+".positions.json"))
		o.BatchSize = int(p.Int("batch_size", int64(o.BatchSize)))
		o.MaxLineBytes = int(p.Int("max_line_bytes", int64(o.MaxLineBytes)))
		o.PollInterval = p.Dur("poll_interval", o.PollInterval, time.Millisecond)
		o.IdleTimeout = p.Dur("idle_timeout", o.IdleTimeout, time.Millisecond)
		o.CloseIdle = p.Dur("close_idle", o.CloseIdle, time.Millisecond)
		o.SkipToEnd = p.Bool("skip_to_end", false)
		o.FileHeader = p.Bool("file_header", false)
		o.Log, o.C = a.env.Log, proc.C
		if err := p.Err("taildir source"); err != nil {
			return nil, err
		}
		if !a.check {
			src, err = taildir.New(name, o, proc)
		}
	case "exec":
		o := execOptions(p)
		o.Log, o.C = a.env.Log, proc.C
		if err := p.Err("exec source"); err != nil {
			return nil, err
		}
		if !a.check {
			src, err = execsrc.New(name, o, proc)
		}
	case "kafka":
		o := a.kafkaSourceOptions(p)
		o.Log, o.C = a.env.Log, proc.C
		if err := p.Err("kafka source"); err != nil {
			return nil, err
		}
		if !a.check {
			src, err = kafkasrc.New(name, o, proc)
		}
	default:
		if s, ok, e := a.buildNetSource(name, typ, p, proc); ok {
			src, err = s, e
			break
		}
		if typ != "" {
			p.fail("type", "unsupported source type %q (want spooldir, taildir, exec, kafka, tcp, syslog or http)", typ)
		}
		return nil, p.Err("source")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.where, err)
	}
	return src, nil
}

// Start starts sink runners first (so channels drain from the start), then sources.
func (a *Agent) Start(ctx context.Context) error {
	stopCtx, stop := context.WithCancel(context.Background())
	hardCtx, hard := context.WithCancel(context.Background())
	a.stop, a.hard = stop, hard
	for _, r := range a.runners {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			r.Run(stopCtx, hardCtx)
		}()
	}
	for i, s := range a.sources {
		if err := s.Start(ctx); err != nil {
			for _, started := range a.sources[:i] {
				_ = started.Stop(ctx)
			}
			return fmt.Errorf("cannot start source %s: %w", s.Name(), err)
		}
	}
	a.env.Log.Info("ingest agent started", "agent", a.name, "sources", len(a.sources), "channels", len(a.channels), "sinks", len(a.runners))
	return nil
}

// Stop stops sources, lets sinks finish the batch in flight until ctx ends, then closes
// sinks and channels. Safe twice and after a failed Start.
func (a *Agent) Stop(ctx context.Context) error {
	var errs []error
	a.once.Do(func() {
		for _, s := range a.sources {
			if err := s.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("source %s: %w", s.Name(), err))
			}
		}
		if a.stop != nil {
			a.stop()
			done := make(chan struct{})
			go func() { a.wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				a.hard()
				<-done
			}
			a.hard()
		}
		errs = append(errs, a.closeAll())
	})
	return errors.Join(errs...)
}

func (a *Agent) closeAll() error {
	var errs []error
	for _, s := range a.sinks {
		errs = append(errs, s.Close())
	}
	for _, c := range a.channels {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
