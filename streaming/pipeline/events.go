package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/internal/event"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/streaming/internal/mem"
	"github.com/tagpipe/tagpipe/warehouse"
)

// Options configure the events pipeline.
type Options struct {
	// Name is the pipeline name stored in snapshot properties; default "events".
	Name string
	// Interval is the batch interval; default 5s.
	Interval time.Duration
	// Warehouse receives the tables. Required.
	Warehouse *warehouse.Warehouse
	// Formats maps a topic to its parser; topics not listed use Default.
	Formats map[string]event.Options
	// Default parser; zero means format "auto" (jsonl, taobao or movielens per line).
	Default event.Options
	// DedupByEventID drops an event whose event id was already seen within DedupTTL of
	// batch time (the dedup state is checkpointed). Events without an id are kept.
	DedupByEventID bool
	DedupTTL       time.Duration
	// Windows configures rt_window_counts; Length 0 disables it.
	Windows WindowOptions
}

// WindowOptions configure the event-time window counts.
type WindowOptions struct {
	Length, Slide, AllowedLateness time.Duration
	// Topic, when set, also receives every closed window's count as a JSON record
	// (keyed dimension:key) through a streaming.KafkaSink on Brokers, for consumers that
	// want them as they close rather than from rt_window_counts. At least once.
	Topic   string
	Brokers []string
	// Security is TLS and SASL for Brokers; nil = PLAINTEXT.
	Security *kafkasec.Security
}

// DefaultOptions: events every 5s, auto format, dedup by event id for 24h, windows of
// 10 min every 1 min with 1 min allowed lateness.
func DefaultOptions() Options {
	return Options{
		Name:           "events",
		Interval:       5 * time.Second,
		Default:        event.Options{Format: "auto"},
		DedupByEventID: true,
		DedupTTL:       24 * time.Hour,
		Windows:        WindowOptions{Length: 10 * time.Minute, Slide: time.Minute, AllowedLateness: time.Minute},
	}
}

// Events is the built-in events pipeline: its job and its table sinks.
type Events struct {
	Job     *streaming.Job
	opts    Options
	sinks   []*tableSink
	kafka   *streaming.KafkaSink // window counts to a topic, when set
	windows *streaming.EventWindows[dimEvent, [2]string, int64]
	// formats is the parser format of each configured topic ("": the default's).
	formats map[string]string
}

// formatOf is the name of the format records of topic are parsed with.
func (e *Events) formatOf(topic string) string {
	if f, ok := e.formats[topic]; ok {
		return f
	}
	return e.formats[""]
}

// parsed is one record after parsing: the fields of its event.Event the tables and
// windows use, packed. A batch holds one per record in fresh memory (300k records:
// every 100 bytes here is 30 MB to fault in and for the GC to scan); event.Event's
// 200 bytes carry lineage and an ingest time the record and batch already have, and
// a time.Time where seconds and nanoseconds do.
//
// The event's user, item and category are kept as places in the record's value
// (vref) where they view it, as the view parsers' strings do, rather than as
// strings: a string is a pointer the garbage collector follows in every cycle that
// sees the batch (1.2M of them for a 300k-record batch with the action: ~50 ms of GC
// CPU in such a batch's cycles). Strings that do not view the value (JSON's,
// copies) and props go to ext, allocated only for them. The action stays a string:
// the parsers name it with their constants (no heap object to mark). So does the
// error of a record that did not parse (rare: ext is allocated for it); the
// record's source is read from its headers where it is used (source). 96 bytes a
// row and four pointers, where an error and a source string made it 128 and seven.
type parsed struct {
	rec *streaming.Record // the batch's input record (valid for the batch)
	ext *parsedExt        // see parsedExt; nil for most rows
	// The event, when err() is nil. eventID is the event's id, else the collector's.
	eventID, action string
	user, item, cat vref
	value           float64
	sec             int64 // event time: Unix seconds
	nsec            int32 // and nanoseconds
	hasValue        bool
	// ascii: the parser found the record's value printable ASCII (so valid UTF-8:
	// ods_events's raw takes it without validating it again).
	ascii bool
}

// parsedExt holds what of a parsed row does not fit the row: strings not viewing
// the value, props, the error of a record that did not parse.
type parsedExt struct {
	strs  [3]string // user, item, category: those not viewing the value
	props map[string]string
	err   error // nil, event.ErrHeader or a *event.ParseError
}

// err is nil for a row that parsed, else event.ErrHeader or a *event.ParseError.
func (p *parsed) err() error {
	if p.ext == nil {
		return nil
	}
	return p.ext.err
}

// source is where the row's line came from, from its record's headers (see sourceOf).
func (p *parsed) source() string { return sourceOf(p.rec) }

// vref is a string of a parsed event: n bytes at off of the record's value, or with
// ext set, its parsedExt string.
type vref struct {
	off uint32
	n   uint32 // top bit: in parsedExt
}

const vrefExt = 1 << 31

// setStrings sets the event strings of p (whose rec is set) from ev's.
func (p *parsed) setStrings(ev *event.Event) {
	v := p.rec.Value
	for i, s := range [3]string{ev.UserID, ev.ItemID, ev.Category} {
		var r vref
		if len(s) > 0 {
			off := uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(v)))
			if len(v) > 0 && off <= uintptr(len(v)) && uintptr(len(s)) <= uintptr(len(v))-off && len(s) < vrefExt {
				r = vref{off: uint32(off), n: uint32(len(s))}
			} else {
				if p.ext == nil {
					p.ext = &parsedExt{}
				}
				p.ext.strs[i], r = s, vref{n: vrefExt}
			}
		}
		*p.ref(i) = r
	}
	if len(ev.Props) > 0 {
		if p.ext == nil {
			p.ext = &parsedExt{}
		}
		p.ext.props = ev.Props
	}
}

func (p *parsed) ref(i int) *vref {
	switch i {
	case 0:
		return &p.user
	case 1:
		return &p.item
	}
	return &p.cat
}

func (p *parsed) str(i int) string {
	r := *p.ref(i)
	switch {
	case r.n == 0:
		return ""
	case r.n&vrefExt != 0:
		return p.ext.strs[i]
	}
	return unsafe.String(&p.rec.Value[r.off], int(r.n))
}

func (p *parsed) userID() string   { return p.str(0) }
func (p *parsed) itemID() string   { return p.str(1) }
func (p *parsed) category() string { return p.str(2) }

func (p *parsed) props() map[string]string {
	if p.ext == nil {
		return nil
	}
	return p.ext.props
}

// eventTime is the event's time (UTC).
func (p *parsed) eventTime() time.Time { return time.Unix(p.sec, int64(p.nsec)).UTC() }

// unixMicro is the event's time in Unix microseconds (time.Time.UnixMicro).
func (p *parsed) unixMicro() int64 { return p.sec*1e6 + int64(p.nsec)/1e3 }

// dimEvent is what rt_window_counts counts under one dimension (its action, or with
// category set its category): one event, or n events of one slide-sized pane of
// event time, none of them late (see piece.dims).
type dimEvent struct {
	p        *parsed // the event; nil for a count of several
	key      string  // the action or category
	n        int64   // events
	at       int64   // event time in Unix nanoseconds (of a count: its latest)
	category bool
}

// windowKey is the window key: dimension name and value.
func (d dimEvent) windowKey() [2]string {
	if d.category {
		return [2]string{"category", d.key}
	}
	return [2]string{"action", d.key}
}

// eventDims appends p's elements: its action, and its category when it has one.
func eventDims(out []dimEvent, p *parsed) []dimEvent {
	at := p.sec*1e9 + int64(p.nsec)
	out = append(out, dimEvent{p: p, key: p.action, n: 1, at: at})
	if p.category() != "" {
		out = append(out, dimEvent{p: p, key: p.category(), n: 1, at: at, category: true})
	}
	return out
}

// NewEvents builds the pipeline's job and opens (creates) its tables.
func NewEvents(ctx context.Context, opts Options) (*Events, error) {
	d := DefaultOptions()
	if opts.Name == "" {
		opts.Name = d.Name
	}
	if opts.Interval <= 0 {
		opts.Interval = d.Interval
	}
	if opts.Default.Format == "" {
		opts.Default = d.Default
	}
	if opts.DedupTTL <= 0 {
		opts.DedupTTL = d.DedupTTL
	}
	if opts.Warehouse == nil {
		return nil, errors.New("cannot build events pipeline: no warehouse")
	}
	w := opts.Windows
	if w.Length > 0 && (w.Slide <= 0 || w.Slide > w.Length || w.Length%w.Slide != 0 || w.AllowedLateness < 0) {
		return nil, fmt.Errorf("cannot build events pipeline: window length %v must be a positive multiple of slide %v, lateness >= 0", w.Length, w.Slide)
	}
	check := func(topic string, o event.Options) (event.Parser, error) {
		if o.Format == "csv" && len(o.Columns) == 0 {
			// A header learnt from the first line would be lost on restart.
			return nil, fmt.Errorf("cannot build events pipeline: topic %q: csv needs declared columns in streaming", topic)
		}
		p, err := event.New(o)
		if err != nil {
			return nil, fmt.Errorf("cannot build events pipeline: topic %q: %w", topic, err)
		}
		return p, nil
	}
	formats := map[string]string{} // by topic, "" for the default
	newSet := func() (*parserSet, error) {
		set := &parserSet{byTopic: map[string]event.Parser{}, viewByTopic: map[string]event.ViewParser{}}
		for topic, o := range opts.Formats {
			p, err := check(topic, o)
			if err != nil {
				return nil, err
			}
			set.byTopic[topic], set.viewByTopic[topic] = p, event.View(p)
		}
		var err error
		if set.def, err = check("(default)", opts.Default); err != nil {
			return nil, err
		}
		set.viewDef = event.View(set.def)
		return set, nil
	}
	// Parsers are not safe for concurrent use: every parse takes a set of its own.
	first, err := newSet()
	if err != nil {
		return nil, err
	}
	for topic, p := range first.byTopic {
		formats[topic] = p.Format()
	}
	formats[""] = first.def.Format()
	sets := &sync.Pool{New: func() any {
		set, _ := newSet() // the options were checked above
		return set
	}}
	sets.Put(first)
	e := &Events{opts: opts, formats: formats}
	open := func(name string, schema *arrow.Schema) (*tableSink, error) {
		s, err := openSink(ctx, opts.Warehouse, opts.Name, name, schema)
		if err == nil {
			e.sinks = append(e.sinks, s)
		}
		return s, err
	}
	ods, err := open(TableODS, ODSSchema)
	if err != nil {
		return nil, err
	}
	dwd, err := open(TableDWD, DWDSchema)
	if err != nil {
		return nil, err
	}
	dlq, err := open(TableDLQ, DLQSchema)
	if err != nil {
		return nil, err
	}

	j := streaming.NewJob(opts.Name, opts.Interval)
	// The tables are independent: write them concurrently.
	j.SetParallelOutputs(true)
	e.Job = j
	// Records are parsed partition by partition as the engine reads them (overlapping
	// the reads), into slabs reused two batches later (see parsedSlabs).
	var slabs parsedSlabs
	all := streaming.MapPartitions(j, minParseChunk, func(b streaming.BatchInfo, in []streaming.Record) []*parsed {
		slab, out, pc := slabs.get(b.ID, len(in))
		set := sets.Get().(*parserSet)
		set.parse(b, in, slab, out, pc)
		sets.Put(set)
		return out
	})
	// The rows that parsed, with and without an event id, from one pass over the
	// batch's rows, or none when its pieces tell.
	splits := streaming.Transform(all, func(b streaming.BatchInfo, ps []*parsed) []rowSplit {
		return []rowSplit{splitRows(ps, slabs.pieces(b.ID))}
	})
	part := func(f func(rowSplit) []*parsed) *streaming.Stream[*parsed] {
		return streaming.Transform(splits, func(_ streaming.BatchInfo, s []rowSplit) []*parsed { return f(s[0]) })
	}
	good := part(func(s rowSplit) []*parsed { return s.good })
	if opts.DedupByEventID {
		withID := streaming.KeyBy(part(func(s rowSplit) []*parsed { return s.withID }),
			func(p *parsed) string { return p.eventID })
		first := streaming.MapWithState(withID, streaming.StateSpec[string, *parsed, bool, *parsed]{
			Update: func(_ time.Time, _ string, p *parsed, st *streaming.State[bool]) (*parsed, bool) {
				if _, seen := st.Get(); seen {
					return nil, false
				}
				st.Update(true)
				return p, true
			},
			Timeout: opts.DedupTTL,
		})
		noID := part(func(s rowSplit) []*parsed { return s.noID })
		good = streaming.Union(noID, first)
	}

	var odsCols, dwdCols *batchCols // reused batch after batch
	streaming.ForeachBatch(all, TableODS, func(ctx context.Context, b streaming.BatchInfo, ps []*parsed) error {
		recs, ok, err := odsFromPieces(b, ps, slabs.pieces(b.ID), &odsCols)
		if !ok {
			var rec arrow.RecordBatch
			rec, err = odsRecord(b, ps, e.formatOf)
			recs = []arrow.RecordBatch{rec}
		}
		if err != nil {
			return fmt.Errorf("cannot build %s rows of batch %d: %w", TableODS, b.ID, err)
		}
		return ods.write(ctx, b, recs...)
	})
	streaming.ForeachBatch(good, TableDWD, func(ctx context.Context, b streaming.BatchInfo, ps []*parsed) error {
		recs, ok, err := dwdFromPieces(b, ps, slabs.pieces(b.ID), &dwdCols)
		if !ok {
			var rec arrow.RecordBatch
			rec, err = dwdRecord(b, ps)
			recs = []arrow.RecordBatch{rec}
		}
		if err != nil {
			return fmt.Errorf("cannot build %s rows of batch %d: %w", TableDWD, b.ID, err)
		}
		return dwd.write(ctx, b, recs...)
	})
	streaming.ForeachBatch(all, TableDLQ, func(ctx context.Context, b streaming.BatchInfo, ps []*parsed) error {
		if pcs, ok := piecesOf(slabs.pieces(b.ID), ps, false); ok && deadLetters(pcs) == 0 {
			return dlq.write(ctx, b, nil) // nothing to walk the rows for
		}
		rec, err := dlqRecord(b, ps, e.formatOf)
		if err != nil {
			return fmt.Errorf("cannot build %s rows of batch %d: %w", TableDLQ, b.ID, err)
		}
		return dlq.write(ctx, b, rec)
	})
	if w.Length > 0 {
		counts, err := open(TableWindowCounts, WindowCountsSchema)
		if err != nil {
			return nil, err
		}
		late, err := open(TableLate, LateSchema)
		if err != nil {
			return nil, err
		}
		// The elements the windows count, in a slice reused by the next batch (nothing
		// keeps them past their batch: the window state keeps keys and counts, the late
		// stream copies the elements). When the rows are the pieces' (no dedup drop),
		// each piece gives one element per (pane, key) for its events at or above the
		// watermark and one per (event, dimension) for those below (late: every one
		// goes to rt_late_events): the window counts the same, without a map update
		// per event and dimension.
		var dimSlab []dimEvent
		slide := int64(w.Slide)
		dims := streaming.Transform(good, func(b streaming.BatchInfo, in []*parsed) []dimEvent {
			wm := int64(math.MinInt64)
			if t := e.windows.Watermark(); !t.IsZero() {
				wm = t.UnixNano()
			}
			out := dimSlab[:0]
			if pcs, ok := piecesOf(slabs.pieces(b.ID), in, true); ok {
				for _, pc := range pcs {
					out = pc.dims(out, wm, slide)
				}
			} else {
				for _, p := range in {
					out = eventDims(out, p)
				}
			}
			if cap(out) <= 4*len(out)+minParseChunk {
				dimSlab = out
			}
			return out
		})
		e.windows = streaming.EventTimeWindow(dims, streaming.EventWindowSpec[dimEvent, [2]string, int64]{
			Length: w.Length, Slide: w.Slide, AllowedLateness: w.AllowedLateness,
			EventTime: func(d dimEvent) time.Time { return time.Unix(0, d.at) },
			Key:       dimEvent.windowKey,
			Value:     func(d dimEvent) int64 { return d.n },
			Reduce:    func(a, b int64) int64 { return a + b },
			// Parsed strings share the batch's record bytes; panes outlive the batch.
			KeepKey: func(k [2]string) [2]string { return [2]string{k[0], strings.Clone(k[1])} },
		})
		streaming.ForeachBatch(e.windows.Results, TableWindowCounts, func(ctx context.Context, b streaming.BatchInfo, rs []streaming.WindowResult[[2]string, int64]) error {
			return counts.write(ctx, b, windowRecord(rs))
		})
		if w.Topic != "" {
			k, err := streaming.NewKafkaSink(streaming.KafkaSinkOptions{Brokers: w.Brokers, Security: w.Security, Topic: w.Topic})
			if err != nil {
				return nil, fmt.Errorf("cannot build events pipeline: window counts topic: %w", err)
			}
			e.kafka = k
			streaming.ToKafka(e.windows.Results, "topic:"+w.Topic, k, windowCountJSON)
		}
		lateOnce := streaming.Filter(e.windows.Late, func(d dimEvent) bool { return !d.category })
		streaming.ForeachBatch(lateOnce, TableLate, func(ctx context.Context, b streaming.BatchInfo, ds []dimEvent) error {
			return late.write(ctx, b, lateRecord(b, ds, e.windows.LateWatermark()))
		})
	}
	return e, nil
}

// Resume returns the latest batch any of the pipeline's tables holds (the engine replays
// it when its checkpoint is missing; tables that hold it skip it).
func (e *Events) Resume(context.Context) (streaming.BatchInfo, bool, error) {
	var best streaming.BatchInfo
	found := false
	for _, s := range e.sinks {
		b, ok, err := s.lastBatch()
		if err != nil {
			return best, false, err
		}
		if ok && (!found || b.ID > best.ID) {
			best, found = b, true
		}
	}
	return best, found, nil
}

// Watermark is the window counts' watermark (zero when disabled or before data).
func (e *Events) Watermark() time.Time {
	if e.windows == nil {
		return time.Time{}
	}
	return e.windows.Watermark()
}

// minParseChunk is the fewest records a parse works on when a batch is cut into
// pieces for every core (RunBatch without the engine's reads).
const minParseChunk = 4096

// parsedSlabs hands out the memory parsed rows live in, reused rather than freshly
// allocated (and faulted in, and cleared) every batch. Batch n's slabs come back
// for batch n+2: the engine parses batch n+1 while n is processed, and starts parsing
// n+2 only after n committed; nothing keeps parsed rows past their batch.
type parsedSlabs struct {
	mu   sync.Mutex
	sets [2]slabSet
}

type slabSet struct {
	batch      int64
	started    bool
	free, used []parsedSlab
	dicts      *pieceDicts // shared by the batch's pieces
}

type parsedSlab struct {
	rows []parsed
	ptrs []*parsed
	pc   *piece // the rows' table columns, reused with them
}

// get returns room for n parsed rows of batch id, pointers to them and the piece
// to build their table columns in.
func (s *parsedSlabs) get(id int64, n int) ([]parsed, []*parsed, *piece) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := &s.sets[id&1]
	if !set.started || set.batch != id {
		// The last batch's slabs (and their pieces) are the ones to reuse; older free
		// ones it did not need are dropped, so a batch far smaller than an earlier one
		// does not keep that one's memory.
		set.free = append(set.free[:0], set.used...)
		set.used = set.used[:0]
		set.batch, set.started = id, true
		if set.dicts == nil {
			set.dicts = newPieceDicts()
		} else {
			set.dicts.reset()
		}
	}
	var sl parsedSlab
	for i, f := range set.free {
		if cap(f.rows) >= n && cap(f.rows) <= 4*n+minParseChunk {
			sl = f
			set.free = append(set.free[:i], set.free[i+1:]...)
			break
		}
	}
	if sl.rows == nil {
		sl = parsedSlab{mem.Slab[parsed](n), mem.Slab[*parsed](n), newPiece(n)} // filled row by row
	}
	set.used = append(set.used, sl)
	sl.pc.reset(sl.rows[:n], set.dicts)
	return sl.rows[:n], sl.ptrs[:n], sl.pc
}

// pieces returns the pieces parsed for batch id (the batch being written: its slabs
// are not handed out again before it committed).
func (s *parsedSlabs) pieces(id int64) []*piece {
	if noPieces {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := &s.sets[id&1]
	if !set.started || set.batch != id {
		return nil
	}
	out := make([]*piece, len(set.used))
	for i, sl := range set.used {
		out[i] = sl.pc
	}
	return out
}

// noPieces is a test hook: the tables built from the parsed rows only.
var noPieces bool

// parserSet is one parse worker's parsers.
type parserSet struct {
	byTopic map[string]event.Parser
	def     event.Parser
	// The parsers' ParseView where they have one: the parsed strings share the
	// record's bytes, which stay untouched for the batch, as the parsed rows do (an
	// allocation per field was most of parsing's cost and of what the GC traced).
	// Strings kept past the batch are copied where they are kept (dedup keys come
	// copied from the record header or the JSON parser; window keys are cloned when
	// a pane first stores them).
	viewByTopic map[string]event.ViewParser
	viewDef     event.ViewParser
}

// parse parses in into slab, points out at it and adds the rows to pc.
func (s *parserSet) parse(b streaming.BatchInfo, in []streaming.Record, slab []parsed, out []*parsed, pc *piece) {
	var parser event.ViewParser
	var ascii event.ASCIIViewParser // parser, when it is one
	topic, format := "", ""
	var ev event.Event
	for i := range in {
		r := &in[i]
		if parser == nil || r.Topic != topic {
			// A chunk's records mostly share a topic: one lookup per run.
			var ok bool
			if parser, ok = s.viewByTopic[r.Topic]; !ok {
				parser = s.viewDef
			}
			topic, format = r.Topic, parser.Format()
			ascii, _ = parser.(event.ASCIIViewParser)
		}
		ps := &slab[i]
		out[i] = ps
		s.parseOne(r, parser, ascii, &ev, ps)
		pc.add(b, i, r, ps, format)
	}
}

// parseOne parses r into ps (all of it: the slab is reused) with parser, through
// ascii when that is parser as an event.ASCIIViewParser.
func (s *parserSet) parseOne(r *streaming.Record, parser event.ViewParser, ascii event.ASCIIViewParser, ev *event.Event, ps *parsed) {
	if reason, bad := r.Header("error"); bad {
		// The collector delivered a line it marked as bad (over-long, invalid
		// UTF-8, binary): dead-letter it with the collector's reason.
		*ps = parsed{rec: r, ext: &parsedExt{err: &event.ParseError{Format: "collector", Reason: reason}}}
		return
	}
	var printable bool
	var err error
	if ascii != nil {
		printable, err = ascii.ParseViewASCII(r.Value, ev)
	} else {
		err = parser.ParseView(r.Value, ev)
	}
	if err != nil {
		*ps = parsed{rec: r, ext: &parsedExt{err: err}, ascii: printable}
		return
	}
	if ev.EventID == "" {
		// The collector's stable line id (header event_id): a line it delivered
		// twice (crash, producer retry) is deduplicated like an event id.
		ev.EventID, _ = r.Header(eventIDHeader)
	}
	*ps = parsed{
		rec: r, eventID: ev.EventID, action: ev.Action,
		value: ev.Value, hasValue: ev.HasValue,
		sec: ev.EventTime.Unix(), nsec: int32(ev.EventTime.Nanosecond()), ascii: printable,
	}
	ps.setStrings(ev)
}

// eventIDHeader is the record header the collector puts a line's stable id in.
const eventIDHeader = "event_id"

// sourceOf is where the record's line came from, from its headers. The string shares
// the header's bytes (valid for the batch, like the record): it only goes into the
// batch's rows.
func sourceOf(r *streaming.Record) string {
	for _, k := range [...]string{"file", "source", "host", "peer"} {
		for _, h := range r.Headers {
			if h.Key == k {
				if len(h.Value) == 0 {
					return ""
				}
				return unsafe.String(unsafe.SliceData(h.Value), len(h.Value))
			}
		}
	}
	return ""
}

// day formats t's UTC date; the last few dates are cached because a batch's events
// mostly share a handful of days and formatting dominates building the rows.
func day(t time.Time) string {
	d := floorDay(t.Unix())
	dayMu.Lock()
	s, ok := dayCache[d]
	dayMu.Unlock()
	if ok {
		return s
	}
	s = time.Unix(d*86400, 0).UTC().Format(time.DateOnly)
	dayMu.Lock()
	if len(dayCache) > 4096 {
		clear(dayCache)
	}
	dayCache[d] = s
	dayMu.Unlock()
	return s
}

var (
	dayMu    sync.Mutex
	dayCache = map[int64]string{}
)

func floorDay(unix int64) int64 {
	d := unix / 86400
	if unix%86400 < 0 {
		d--
	}
	return d
}

// dayMemo formats days like day, remembering the last one: the rows of a batch mostly
// come in runs of one day, and day's shared cache takes a lock per call.
type dayMemo struct {
	unixDay int64
	s       string
}

// dayOf is day of a time given in Unix seconds.
func (m *dayMemo) dayOf(unix int64) string {
	if d := floorDay(unix); d != m.unixDay || m.s == "" {
		m.unixDay, m.s = d, day(time.Unix(unix, 0))
	}
	return m.s
}

// recordTime is when a record reached Kafka: its timestamp, else the batch time.
func recordTime(b streaming.BatchInfo, r *streaming.Record) time.Time {
	if r.Time.IsZero() || r.Time.Unix() <= 0 {
		return b.Time
	}
	return r.Time
}

func recordDay(b streaming.BatchInfo, r *streaming.Record) string { return day(recordTime(b, r)) }

func odsRecord(b streaming.BatchInfo, ps []*parsed, formatOf func(topic string) string) (arrow.RecordBatch, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	n := len(ps)
	ingest := arrow.Timestamp(b.Time.UnixMicro())
	// ODS keeps lines as received, so its dt is the day the record reached Kafka (its
	// timestamp), not the event's day: a backlog of old events (MovieLens spans 22 years)
	// lands in one partition instead of one tiny file per historic day and batch. dwd_events
	// is partitioned by event day.
	days := make([]int64, n)
	rawBytes := 0
	for i, p := range ps {
		days[i] = floorDay(recordTime(b, p.rec).Unix())
		rawBytes += len(p.rec.Value)
	}
	ps, days = groupByDay(ps, days)
	var memo dayMemo
	dt, topic, key, raw := newDictCol(n), newDictCol(n), newStrCol(n, 0), newStrCol(0, 0)
	raw.data = make([]byte, 0, rawBytes)
	part, off := newFixedCol[int32](n), newFixedCol[int64](n)
	ktime, itime := newTSCol(n), newFixedCol[arrow.Timestamp](n)
	source, format, ok := newDictCol(n), newDictCol(n), newBoolCol(n)
	var lastTopic, lastFormat string
	for i, p := range ps {
		r := p.rec
		if i == 0 || r.Topic != lastTopic {
			lastTopic, lastFormat = r.Topic, formatOf(r.Topic)
		}
		dt.add(memo.dayOf(days[i] * 86400))
		topic.add(r.Topic)
		part.add(r.Partition)
		off.add(r.Offset)
		if r.Key == nil {
			key.null()
		} else {
			key.addText(r.Key)
		}
		raw.addText(r.Value)
		ktime.opt(r.Time)
		itime.add(ingest)
		source.opt(p.source())
		format.add(lastFormat)
		ok.add(p.err() == nil)
	}
	return strRecord(ODSSchema, n, []any{dt, topic, part, off, key, raw, ktime, itime, source, format, ok})
}

// strRecord builds a record of schema from the pipeline's column types, in order.
func strRecord(schema *arrow.Schema, n int, cols []any) (arrow.RecordBatch, error) {
	arrs := make([]arrow.Array, 0, len(cols))
	release := func() {
		for _, a := range arrs {
			a.Release()
		}
	}
	for i, c := range cols {
		var a arrow.Array
		switch c := c.(type) {
		case *strCol:
			var err error
			if a, err = c.array(); err != nil {
				release()
				return nil, fmt.Errorf("column %s: %w", schema.Field(i).Name, err)
			}
		case *dictCol:
			var err error
			if a, err = c.array(); err != nil {
				release()
				return nil, fmt.Errorf("column %s: %w", schema.Field(i).Name, err)
			}
		case *fixedCol[int32]:
			a = c.array(schema.Field(i).Type)
		case *fixedCol[int64]:
			a = c.array(schema.Field(i).Type)
		case *fixedCol[float64]:
			a = c.array(schema.Field(i).Type)
		case *fixedCol[arrow.Timestamp]:
			a = c.array(schema.Field(i).Type)
		case *tsCol:
			a = c.array(schema.Field(i).Type)
		case *boolCol:
			a = c.array()
		case arrow.Array:
			a = c
		default:
			release()
			return nil, fmt.Errorf("BUG: column %s: unknown column type %T", schema.Field(i).Name, c)
		}
		arrs = append(arrs, a)
	}
	return recordOf(schema, n, arrs...), nil
}

func dwdRecord(b streaming.BatchInfo, ps []*parsed) (arrow.RecordBatch, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	n := len(ps)
	ingest := arrow.Timestamp(b.Time.UnixMicro())
	days := make([]int64, n)
	withProps := false
	for i, p := range ps {
		days[i] = floorDay(p.sec)
		withProps = withProps || len(p.props()) > 0
	}
	ps, days = groupByDay(ps, days)
	var memo dayMemo
	dt, eventID, user, item, action := newDictCol(n), newStrCol(n, 0), newStrCol(n, 8), newStrCol(n, 8), newDictCol(n)
	etime, value, category := newFixedCol[arrow.Timestamp](n), newFixedCol[float64](n), newDictCol(n)
	topic, part, off, itime, source := newDictCol(n), newFixedCol[int32](n), newFixedCol[int64](n), newFixedCol[arrow.Timestamp](n), newDictCol(n)
	var props *array.MapBuilder
	var pk, pv *array.StringBuilder
	if withProps {
		props = array.NewBuilder(memory.DefaultAllocator, strMap).(*array.MapBuilder)
		defer props.Release()
		pk, pv = props.KeyBuilder().(*array.StringBuilder), props.ItemBuilder().(*array.StringBuilder)
	}
	for i, p := range ps {
		dt.add(memo.dayOf(days[i] * 86400))
		eventID.opt(p.eventID)
		user.add(p.userID())
		item.opt(p.itemID())
		action.add(p.action)
		etime.add(arrow.Timestamp(p.unixMicro()))
		if p.hasValue {
			value.add(p.value)
		} else {
			value.null()
		}
		category.opt(p.category())
		if props != nil {
			if len(p.props()) == 0 {
				props.AppendNull()
			} else {
				props.Append(true)
				for _, k := range slices.Sorted(maps.Keys(p.props())) {
					pk.Append(k)
					pv.Append(p.props()[k])
				}
			}
		}
		topic.add(p.rec.Topic)
		part.add(p.rec.Partition)
		off.add(p.rec.Offset)
		itime.add(ingest)
		source.opt(p.source())
	}
	var propsArr arrow.Array
	if props != nil {
		propsArr = props.NewArray()
	} else {
		propsArr = nullProps(n)
	}
	return strRecord(DWDSchema, n, []any{dt, eventID, user, item, action, etime, value, category, propsArr, topic, part, off, itime, source})
}

// nullProps is a props column of n nulls.
func nullProps(n int) arrow.Array { return array.MakeArrayOfNull(memory.DefaultAllocator, strMap, n) }

func dlqRecord(b streaming.BatchInfo, ps []*parsed, formatOf func(topic string) string) (arrow.RecordBatch, error) {
	var bad []*parsed
	for _, p := range ps {
		if err := p.err(); err != nil && !errors.Is(err, event.ErrHeader) {
			bad = append(bad, p)
		}
	}
	if len(bad) == 0 {
		return nil, nil
	}
	n := len(bad)
	ingest := arrow.Timestamp(b.Time.UnixMicro())
	dt, topic, part, off := newStrCol(n, 10), newStrCol(n, 8), newFixedCol[int32](n), newFixedCol[int64](n)
	raw, reason, format := newStrCol(n, 64), newStrCol(n, 32), newStrCol(n, 4)
	ktime, itime, source := newTSCol(n), newFixedCol[arrow.Timestamp](n), newStrCol(n, 0)
	for _, p := range bad {
		r := p.rec
		dt.add(recordDay(b, r))
		topic.add(r.Topic)
		part.add(r.Partition)
		off.add(r.Offset)
		raw.addText(r.Value)
		reason.add(p.err().Error())
		format.add(formatOf(r.Topic))
		ktime.opt(r.Time)
		itime.add(ingest)
		source.opt(p.source())
	}
	return strRecord(DLQSchema, n, []any{dt, topic, part, off, raw, reason, format, ktime, itime, source})
}

// windowCountJSON is a closed window's count as a Kafka record: key dimension:key, value
// the rt_window_counts row as JSON.
func windowCountJSON(r streaming.WindowResult[[2]string, int64]) (key, value []byte) {
	key = []byte(r.Key[0] + ":" + r.Key[1])
	value, _ = json.Marshal(struct {
		Start     time.Time `json:"window_start"`
		End       time.Time `json:"window_end"`
		Dimension string    `json:"dimension"`
		Key       string    `json:"key"`
		Events    int64     `json:"events"`
	}{r.Start.UTC(), r.End.UTC(), r.Key[0], r.Key[1], r.Val})
	return key, value
}

// Close releases the pipeline's Kafka writer (the window counts topic), if any.
func (e *Events) Close() error {
	if e.kafka == nil {
		return nil
	}
	return e.kafka.Close()
}

func windowRecord(rs []streaming.WindowResult[[2]string, int64]) arrow.RecordBatch {
	if len(rs) == 0 {
		return nil
	}
	bl := newBuilder(WindowCountsSchema)
	for _, r := range rs {
		bl.str(0).Append(day(r.Start))
		bl.ts(1).Append(arrow.Timestamp(r.Start.UnixMicro()))
		bl.ts(2).Append(arrow.Timestamp(r.End.UnixMicro()))
		bl.str(3).Append(r.Key[0])
		bl.str(4).Append(r.Key[1])
		bl.i64(5).Append(r.Val)
	}
	return bl.record()
}

func lateRecord(b streaming.BatchInfo, ds []dimEvent, wm time.Time) arrow.RecordBatch {
	if len(ds) == 0 {
		return nil
	}
	bl := newBuilder(LateSchema)
	for _, d := range ds {
		p := d.p
		bl.str(0).Append(day(p.eventTime()))
		bl.str(1).Append(p.rec.Topic)
		bl.i32(2).Append(p.rec.Partition)
		bl.i64(3).Append(p.rec.Offset)
		bl.str(4).Append(p.userID())
		bl.optStr(5, p.itemID())
		bl.str(6).Append(p.action)
		bl.optStr(7, p.category())
		bl.ts(8).Append(arrow.Timestamp(p.unixMicro()))
		bl.ts(9).Append(arrow.Timestamp(wm.UnixMicro()))
		bl.ts(10).Append(arrow.Timestamp(b.Time.UnixMicro()))
	}
	return bl.record()
}

// groupByDay orders rows by day (Unix days), keeping their order within a day, so the
// warehouse writer gets one contiguous run per dt partition (no copying) however the
// events of a batch interleave days.
func groupByDay(ps []*parsed, days []int64) ([]*parsed, []int64) {
	same := true
	for i := 1; i < len(days) && same; i++ {
		same = days[i] == days[0]
	}
	if same {
		return ps, days
	}
	idx := make([]int, len(ps))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return days[idx[a]] < days[idx[b]] })
	ops, odays := make([]*parsed, len(ps)), make([]int64, len(ps))
	for i, j := range idx {
		ops[i], odays[i] = ps[j], days[j]
	}
	return ops, odays
}
