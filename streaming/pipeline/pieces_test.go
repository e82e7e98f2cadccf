package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tagpipe/tagpipe/internal/event"
	"github.com/tagpipe/tagpipe/streaming"
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
				if p.err == nil {
					good = append(good, p)
				}
			}
			odsPieces, odsOK := piecesOf(pieces, all, false)
			mixed := false
			for _, pc := range odsPieces {
				mixed = mixed || pc.odsMixed
			}
			compare(t, "ods", odsOK && !mixed,
				func() (arrow.RecordBatch, bool, error) { return odsFromPieces(b, all, slabs.pieces(b.ID)) },
				func() (arrow.RecordBatch, error) { return odsRecord(b, all, formatOf) })
			dwdPieces, dwdOK := piecesOf(pieces, good, true)
			mixed = false
			for _, pc := range dwdPieces {
				mixed = mixed || pc.dwdMixed
			}
			compare(t, "dwd", dwdOK && !mixed,
				func() (arrow.RecordBatch, bool, error) { return dwdFromPieces(b, good, slabs.pieces(b.ID)) },
				func() (arrow.RecordBatch, error) { return dwdRecord(b, good) })
			// A row missing (dedup dropped it): the pieces fit only when it was a
			// piece of its own, and then give the rows' record.
			compare(t, "dwd without its first row", size == 1 || oneDay && good[0] == &pieces[0].rows[0] && len(pieces[0].good) == 1,
				func() (arrow.RecordBatch, bool, error) { return dwdFromPieces(b, good[1:], slabs.pieces(b.ID)) },
				func() (arrow.RecordBatch, error) { return dwdRecord(b, good[1:]) })
			compare(t, "ods without its last row", size == 1,
				func() (arrow.RecordBatch, bool, error) { return odsFromPieces(b, all[:len(all)-1], slabs.pieces(b.ID)) },
				func() (arrow.RecordBatch, error) { return odsRecord(b, all[:len(all)-1], formatOf) })
		})
	}
}

func compare(t *testing.T, table string, wantFit bool, fromPieces func() (arrow.RecordBatch, bool, error), fromRows func() (arrow.RecordBatch, error)) {
	t.Helper()
	got, ok, err := fromPieces()
	if err != nil {
		t.Fatal(err)
	}
	if ok != wantFit {
		t.Fatalf("%s: pieces used %v, want %v", table, ok, wantFit)
	}
	if !ok {
		return
	}
	defer got.Release()
	want, err := fromRows()
	if err != nil {
		t.Fatal(err)
	}
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
