package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/internal/event"
	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/warehouse"
)

// TestPiecesEqualRows: the ods_events and dwd_events records concatenated from the
// parse pieces equal the ones built from the parsed rows (odsRecord, dwdRecord), for
// pieces of several sizes over records with every kind of value: two topics and
// formats, keys or none, bad lines, collector-marked lines, source headers or none,
// ratings, zero record times, days out of order across pieces; and the pieces are
// refused where they do not fit (mixed days in a piece, props, rows missing).
func TestPiecesEqualRows(t *testing.T) {
	for _, oneDay := range []bool{false, true} {
		t.Run(fmt.Sprintf("oneDay=%v", oneDay), func(t *testing.T) { testPiecesEqualRows(t, oneDay) })
	}
}

// testPiecesEqualRows: with oneDay, every event and record is of one day (pieces of
// any size fit); else record days change every 200 records and event days alternate.
func testPiecesEqualRows(t *testing.T, oneDay bool) {
	base := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC).Unix()
	days := int64(86400)
	if oneDay {
		days = 0
	}
	var recs []streaming.Record
	for i := range 600 {
		r := streaming.Record{Topic: "events", Partition: int32(i % 3), Offset: int64(i), Time: time.Unix(base+int64(i/200)*days, 0)}
		switch i % 7 {
		case 0:
			r.Value = fmt.Appendf(nil, "u%d,i%d,c%d,%s,%d", i%13, i, i%5, [...]string{"pv", "buy", "cart", "fav"}[i%4], base+int64(i))
		case 1:
			r.Topic, r.Value = "ratings", fmt.Appendf(nil, "%d,%d,%d.5,%d", i%11, i, i%5, base+int64(i))
		case 2:
			r.Value = []byte("not a line")
		case 3:
			r.Value, r.Headers = []byte("x\xffy"), []streaming.Header{{Key: "error", Value: []byte("invalid UTF-8")}}
		case 4:
			r.Key, r.Headers = []byte("k"), []streaming.Header{{Key: "file", Value: fmt.Appendf(nil, "/spool/f%d", i%3)}}
			r.Value = fmt.Appendf(nil, "u%d,i%d,c%d,pv,%d", i, i, i%50, base+int64(i))
		case 5:
			if !oneDay {
				r.Time = time.Time{} // no record time: the batch's day
			}
			r.Value = fmt.Appendf(nil, "u%d,,c1,fav,%d", i, base) // empty item: bad
		default:
			r.Headers = []streaming.Header{{Key: eventIDHeader, Value: fmt.Appendf(nil, "id%d", i)}}
			r.Value = fmt.Appendf(nil, "u%d,i%d,c%d,cart,%d", i, i, i%3, base-days*int64(i%2))
		}
		recs = append(recs, r)
	}
	taobao, _ := event.New(event.Options{Format: "taobao"})
	auto, _ := event.New(event.Options{Format: "auto"})
	set := &parserSet{
		byTopic: map[string]event.Parser{"events": auto}, viewByTopic: map[string]event.ViewParser{"events": event.View(auto)},
		def: taobao, viewDef: event.View(taobao),
	}
	formatOf := func(topic string) string {
		if topic == "events" {
			return "auto"
		}
		return "taobao"
	}
	b := streaming.BatchInfo{ID: 3, Time: time.Unix(base+3*days, 0)}
	for _, size := range []int{1, 7, 100, 200, 600} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var slabs parsedSlabs
			var all []*parsed
			var pieces []*piece
			for lo := 0; lo < len(recs); lo += size {
				in := recs[lo:min(len(recs), lo+size)]
				slab, out, pc := slabs.get(b.ID, len(in))
				set.parse(b, in, slab, out, pc)
				all = append(all, out...)
				pieces = append(pieces, pc)
			}
			var good []*parsed
			for _, p := range all {
				if p.err() == nil {
					good = append(good, p)
				}
			}
			checkSplit(t, all, slabs.pieces(b.ID))
			checkSplit(t, good, slabs.pieces(b.ID))
			checkSplit(t, all[:len(all)/2], slabs.pieces(b.ID))
			odsPieces, odsOK := piecesOf(pieces, all, false)
			mixed := false
			for _, pc := range odsPieces {
				mixed = mixed || pc.odsMixed
			}
			compare(t, "ods", odsOK && !mixed,
				func() ([]arrow.RecordBatch, bool, error) { return odsFromPieces(b, all, slabs.pieces(b.ID), nil) },
				func() (arrow.RecordBatch, error) { return odsRecord(b, all, formatOf) })
			dwdPieces, dwdOK := piecesOf(pieces, good, true)
			mixed = false
			for _, pc := range dwdPieces {
				mixed = mixed || pc.dwdMixed
			}
			compare(t, "dwd", dwdOK && !mixed,
				func() ([]arrow.RecordBatch, bool, error) { return dwdFromPieces(b, good, slabs.pieces(b.ID), nil) },
				func() (arrow.RecordBatch, error) { return dwdRecord(b, good) })
			// A row missing (dedup dropped it): the pieces fit only when it was a
			// piece of its own, and then give the rows' record.
			compare(t, "dwd without its first row", size == 1 || oneDay && good[0] == &pieces[0].rows[0] && len(pieces[0].good) == 1,
				func() ([]arrow.RecordBatch, bool, error) { return dwdFromPieces(b, good[1:], slabs.pieces(b.ID), nil) },
				func() (arrow.RecordBatch, error) { return dwdRecord(b, good[1:]) })
			compare(t, "ods without its last row", size == 1,
				func() ([]arrow.RecordBatch, bool, error) {
					return odsFromPieces(b, all[:len(all)-1], slabs.pieces(b.ID), nil)
				},
				func() (arrow.RecordBatch, error) { return odsRecord(b, all[:len(all)-1], formatOf) })
		})
	}
}

// compare checks that the chunks built from the pieces hold the rows' record: one
// schema for every chunk, and concatenated, with dictionaries decoded (the pieces'
// shared dictionaries list values in the order the pieces met them), the record's
// columns.
func compare(t *testing.T, table string, wantFit bool, fromPieces func() ([]arrow.RecordBatch, bool, error), fromRows func() (arrow.RecordBatch, error)) {
	t.Helper()
	chunks, ok, err := fromPieces()
	if err != nil {
		t.Fatal(err)
	}
	if ok != wantFit {
		t.Fatalf("%s: pieces used %v, want %v", table, ok, wantFit)
	}
	if !ok {
		return
	}
	for _, c := range chunks {
		defer c.Release()
		if !c.Schema().Equal(chunks[0].Schema()) {
			t.Fatalf("%s: chunk schema\n%v\nfirst\n%v", table, c.Schema(), chunks[0].Schema())
		}
	}
	got := decoded(t, chunks...)
	defer got.Release()
	rows, err := fromRows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Release()
	want := decoded(t, rows)
	defer want.Release()
	if !got.Schema().Equal(want.Schema()) {
		t.Fatalf("%s schema\n%v\nwant\n%v", table, got.Schema(), want.Schema())
	}
	if !array.RecordEqual(got, want) {
		for i := range int(want.NumCols()) {
			if !array.Equal(got.Column(i), want.Column(i)) {
				t.Errorf("%s column %s:\n%v\nwant\n%v", table, want.Schema().Field(i).Name, got.Column(i), want.Column(i))
			}
		}
		t.FailNow()
	}
}

// checkSplit compares splitRows with filtering ps row by row.
func checkSplit(t *testing.T, ps []*parsed, pieces []*piece) {
	t.Helper()
	var want rowSplit
	for _, p := range ps {
		if p.err() == nil {
			want.good = append(want.good, p)
			if p.eventID != "" {
				want.withID = append(want.withID, p)
			} else {
				want.noID = append(want.noID, p)
			}
		}
	}
	got := splitRows(ps, pieces)
	for _, c := range []struct {
		name      string
		got, want []*parsed
	}{{"good", got.good, want.good}, {"withID", got.withID, want.withID}, {"noID", got.noID, want.noID}} {
		if len(c.got) != len(c.want) {
			t.Fatalf("split %s: %d rows, want %d", c.name, len(c.got), len(c.want))
		}
		for i := range c.got {
			if c.got[i] != c.want[i] {
				t.Fatalf("split %s: row %d differs", c.name, i)
			}
		}
	}
}

// TestSplitRowsFromPieces: batches whose rows all parse, with ids on none or on all of
// them, are split from the pieces' counts, the parts being the rows as they are.
func TestSplitRowsFromPieces(t *testing.T) {
	auto, _ := event.New(event.Options{Format: "auto"})
	set := &parserSet{byTopic: map[string]event.Parser{}, viewByTopic: map[string]event.ViewParser{}, def: auto, viewDef: event.View(auto)}
	for _, ids := range []bool{false, true} {
		var slabs parsedSlabs
		b := streaming.BatchInfo{ID: 1, Time: time.Unix(1700000000, 0)}
		var all []*parsed
		for lo := 0; lo < 100; lo += 30 {
			var in []streaming.Record
			for i := lo; i < min(100, lo+30); i++ {
				r := streaming.Record{Topic: "t", Offset: int64(i), Value: fmt.Appendf(nil, "u%d,i,c,pv,1700000000", i)}
				if ids {
					r.Headers = []streaming.Header{{Key: eventIDHeader, Value: fmt.Appendf(nil, "%d", i)}}
				}
				in = append(in, r)
			}
			slab, out, pc := slabs.get(b.ID, len(in))
			set.parse(b, in, slab, out, pc)
			all = append(all, out...)
		}
		s := splitRows(all, slabs.pieces(b.ID))
		whole, none := s.noID, s.withID
		if ids {
			whole, none = s.withID, s.noID
		}
		if len(s.good) != 100 || &s.good[0] != &all[0] || len(whole) != 100 || &whole[0] != &all[0] || len(none) != 0 {
			t.Errorf("ids %v: split %d/%d/%d rows, not the batch's own", ids, len(s.good), len(s.withID), len(s.noID))
		}
		checkSplit(t, all, slabs.pieces(b.ID))
	}
}

// TestPiecesSameTables runs batches of out-of-order, late, bad (invalid UTF-8 too),
// spaced, non-ASCII, category-less and ratings events through the pipeline with and without the pieces (noPieces) and
// compares every table.
func TestPiecesSameTables(t *testing.T) {
	base := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC).Unix()
	var batches [][]streaming.Record
	off := int64(0)
	for bi := range 6 {
		var recs []streaming.Record
		for i := range 3000 {
			at := base + int64(bi*300) + int64(i%600) - int64(i%7)*30 // out of order
			if i%97 == 0 && bi > 2 {
				at -= 3600 // late
			}
			var v []byte
			switch i % 9 {
			case 0:
				v = fmt.Appendf(nil, "%d,%d,%d.5,%d", i%13, i, i%5, at)
			case 1:
				// Lines off the parsers' printable-ASCII path: garbage, invalid
				// UTF-8 (raw gets U+FFFD), spaces, multi-byte runes.
				v = [][]byte{[]byte("garbage"), []byte("bad\xff\xfeline,1,2,pv,3"),
					fmt.Appendf(nil, " u%d,i%d,c1,pv,%d\r", i%31, i, at), fmt.Appendf(nil, "\u00fc%d,i%d,c2,buy,%d", i%31, i, at)}[i/9%4]
			default:
				v = fmt.Appendf(nil, "u%d,i%d,c%d,%s,%d", i%31, i, (i*7)%23, [...]string{"pv", "buy", "cart", "fav"}[i%4], at)
			}
			recs = append(recs, streaming.Record{Topic: "events", Partition: int32(i % 4), Offset: off, Value: v, Time: time.Unix(base, 0)})
			off++
		}
		batches = append(batches, recs)
	}
	run := func(pieces bool) *warehouse.Warehouse {
		noPieces = !pieces
		defer func() { noPieces = false }()
		wh := openWarehouse(t, t.TempDir())
		po := DefaultOptions()
		po.Warehouse = wh
		ev, err := NewEvents(context.Background(), po)
		if err != nil {
			t.Fatal(err)
		}
		for i, recs := range batches {
			if err := ev.Job.RunBatch(context.Background(), streaming.BatchInfo{ID: int64(i), Time: time.Unix(base+int64(i)*5, 0)}, recs); err != nil {
				t.Fatal(err)
			}
		}
		return wh
	}
	with, without := run(true), run(false)
	for table, cols := range map[string][]string{
		TableODS:          {"dt", "topic", "partition", "offset", "raw", "kafka_time", "source", "format", "parsed"},
		TableDWD:          {"dt", "user_id", "item_id", "action", "event_time", "value", "category", "offset", "source"},
		TableDLQ:          {"offset", "reason"},
		TableWindowCounts: {"window_start", "window_end", "dimension", "key", "events"},
		TableLate:         {"offset", "action", "category", "event_time", "watermark"},
	} {
		a, b := tableLines(t, with, table, cols), tableLines(t, without, table, cols)
		if len(a) == 0 {
			t.Errorf("%s: no rows", table)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s: %d rows with pieces, %d without, or different", table, len(a), len(b))
		}
	}
}

// tableLines is a table's rows as sorted lines of cols.
func tableLines(t *testing.T, wh *warehouse.Warehouse, table string, cols []string) []string {
	var out []string
	for _, r := range rows(t, wh, table, cols...) {
		var sb strings.Builder
		for _, c := range cols {
			sb.WriteString(r[c] + "|")
		}
		out = append(out, sb.String())
	}
	slices.Sort(out)
	return out
}

// decoded concatenates recs (one schema) into one record with its dictionary columns
// decoded into plain strings.
func decoded(t *testing.T, recs ...arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	mem := memory.DefaultAllocator
	schema := recs[0].Schema()
	fields := schema.Fields()
	cols := make([]arrow.Array, len(fields))
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	for i := range fields {
		var parts []arrow.Array
		for _, r := range recs {
			c := r.Column(i)
			if d, ok := c.(*array.Dictionary); ok {
				fields[i].Type = arrow.BinaryTypes.String
				sb := array.NewStringBuilder(mem)
				vals := d.Dictionary().(*array.String)
				for j := range d.Len() {
					if d.IsNull(j) {
						sb.AppendNull()
					} else {
						sb.Append(vals.Value(d.GetValueIndex(j)))
					}
				}
				c = sb.NewArray()
				sb.Release()
			} else {
				c.Retain()
			}
			parts = append(parts, c)
		}
		a, err := array.Concatenate(parts, mem)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			p.Release()
		}
		cols[i] = a
	}
	md := schema.Metadata()
	rec := array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// TestParsedStrings: a parsed event gives back its parser's strings, those viewing
// the record's value as places in it (no ext: nothing for the collector to follow),
// the others (JSON's, unescaped) and props from ext.
func TestParsedStrings(t *testing.T) {
	auto, _ := event.New(event.Options{Format: "auto"})
	view := event.View(auto)
	for _, line := range []string{
		"u1,i22,c333,cart,1700000000",
		"7,42,4.5,1700000000",
		`{"user_id":"u\u00e9","item_id":"i\"2","action":"buy","category":"c","ts":1700000000,"props":{"k":"v"}}`,
		`{"user_id":"u1","action":"pv","ts":1700000000}`,
	} {
		r := streaming.Record{Topic: "events", Value: []byte(line)}
		var ev event.Event
		if err := view.ParseView(r.Value, &ev); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var set parserSet
		var p parsed
		set.parseOne(&r, view, view.(event.ASCIIViewParser), &event.Event{}, &p)
		if p.err() != nil {
			t.Fatalf("%s: %v", line, p.err())
		}
		got := []string{p.userID(), p.itemID(), p.action, p.category()}
		want := []string{ev.UserID, ev.ItemID, ev.Action, ev.Category}
		if !slices.Equal(got, want) || !maps.Equal(p.props(), ev.Props) {
			t.Errorf("%s: parsed %q %v, want %q %v", line, got, p.props(), want, ev.Props)
		}
		if !strings.HasPrefix(line, "{") && p.ext != nil {
			t.Errorf("%s: strings viewing the value went to ext %+v", line, *p.ext)
		}
	}
}

// TestBatchParsedAgain: a batch parsed again after its tables were written (the
// engine retries a batch whose commit failed) may bring dictionary values the
// batch's shared dictionaries did not have when its arrays were made.
func TestBatchParsedAgain(t *testing.T) {
	wh := openWarehouse(t, t.TempDir())
	po := DefaultOptions()
	po.Warehouse = wh
	ev, err := NewEvents(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC).Unix()
	recs := func(topic, action string) []streaming.Record {
		var out []streaming.Record
		for i := range 100 {
			out = append(out, streaming.Record{Topic: topic, Partition: int32(i % 2), Offset: int64(i), Time: time.Unix(base, 0),
				Value: fmt.Appendf(nil, "u%d,i%d,c%d,%s,%d", i, i, i%3, action, base+int64(i))})
		}
		return out
	}
	b := streaming.BatchInfo{ID: 0, Time: time.Unix(base, 0)}
	if err := ev.Job.RunBatch(context.Background(), b, recs("events", "pv")); err != nil {
		t.Fatal(err)
	}
	if err := ev.Job.RunBatch(context.Background(), b, recs("clicks", "buy")); err != nil {
		t.Fatal(err)
	}
	b.ID = 1
	if err := ev.Job.RunBatch(context.Background(), b, recs("events", "fav")); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range rows(t, wh, TableDWD, "topic", "action") {
		got[r["topic"]+"/"+r["action"]]++
	}
	if want := map[string]int{"events/pv": 100, "events/fav": 100}; !maps.Equal(got, want) {
		t.Fatalf("dwd rows %v, want %v", got, want)
	}
}

// TestParsedSize: a parsed row stays within 96 bytes (a batch holds one per record in
// fresh memory for the collector to scan; see parsed).
func TestParsedSize(t *testing.T) {
	if n := unsafe.Sizeof(parsed{}); n > 96 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Errorf("parsed is %d bytes, want at most 96", n)
	}
}
