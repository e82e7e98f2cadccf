package pipeline

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tagpipe/tagpipe/internal/event"
	"github.com/tagpipe/tagpipe/streaming"
)

// A piece is the rows of ods_events and dwd_events for one parse piece (a partition's
// records as the engine reads them, or a RunBatch chunk), built column by column by
// the parse while each record and its parsed row are in cache. The table writes then
// hand the pieces' columns to the warehouse as chunks of the batch (see chunks):
// walking 300k parsed rows and their records again per table after the parse, when
// both had long left the caches, was a cache miss per row and most of what building
// the rows cost.
//
// The writes use the pieces only when the rows they get are exactly the pieces' rows
// in piece order (ods: every row; dwd: the rows that parsed), each piece's rows are of
// one day and no row has props; otherwise they build the rows from the parsed rows as
// before (odsRecord, dwdRecord).
type piece struct {
	rows []parsed // the piece's parsed rows
	// ods_events: every row. odsDay is the Unix day of the rows' record times
	// (odsMixed: not all the same).
	odsDay   int64
	odsMixed bool
	ods      odsCols
	// dwd_events: the rows that parsed, good[i] their index in rows.
	good     []int32
	dwdDay   int64
	dwdMixed bool
	props    bool // a row that parsed has props: dwd is built from the rows
	dwd      dwdCols
	// dwdShared: every row parsed so far, so dwd's topic, partition, offset and
	// source are ods's (dwd.topic, part, off and source are empty): not built twice
	// (four appends a row, 20 bytes a row of fresh memory). A row that does not
	// parse copies them into dwd's own (unshare).
	dwdShared bool
	at        []int64 // event time of each row that parsed, Unix ns
	ids       int     // rows that parsed with an event id
	dead      int     // rows for dlq_events (did not parse, not a header)
}

type odsCols struct {
	topic, source, format *dictCol
	part                  *fixedCol[int32]
	off                   *fixedCol[int64]
	key, raw              *strCol
	ktime                 *tsCol
	ok                    *boolCol
}

type dwdCols struct {
	eventID, user, item     *strCol
	action, category, topic *dictCol
	source                  *dictCol
	etime                   *fixedCol[arrow.Timestamp]
	value                   *fixedCol[float64]
	part                    *fixedCol[int32]
	off                     *fixedCol[int64]
}

func newPiece(n int) *piece {
	return &piece{
		ods: odsCols{
			topic: newDictCol(n), source: newDictCol(n), format: newDictCol(n),
			part: newFixedCol[int32](n), off: newFixedCol[int64](n),
			key: newStrCol(n, 0), raw: newStrCol(n, 32), ktime: newTSCol(n), ok: newBoolCol(n),
		},
		good: make([]int32, 0, n), at: make([]int64, 0, n),
		dwd: dwdCols{
			eventID: newStrCol(n, 0), user: newStrCol(n, 8), item: newStrCol(n, 8),
			action: newDictCol(n), category: newDictCol(n), topic: newDictCol(0), source: newDictCol(0),
			etime: newFixedCol[arrow.Timestamp](n), value: newFixedCol[float64](n),
			part: newFixedCol[int32](0), off: newFixedCol[int64](0), // see dwdShared
		},
	}
}

// pieceDicts are the dictionaries a batch's pieces share, one per dictionary
// column of theirs.
type pieceDicts struct {
	odsTopic, odsSource, odsFormat *batchDict
	dwdAction, dwdCategory         *batchDict
}

func newPieceDicts() *pieceDicts {
	return &pieceDicts{
		odsTopic: newBatchDict(), odsSource: newBatchDict(), odsFormat: newBatchDict(),
		dwdAction: newBatchDict(), dwdCategory: newBatchDict(),
	}
}

func (d *pieceDicts) reset() {
	for _, bd := range []*batchDict{d.odsTopic, d.odsSource, d.odsFormat, d.dwdAction, d.dwdCategory} {
		bd.reset()
	}
}

// reset empties the piece for rows, keeping its memory; its dictionary columns
// index dicts (nil: dictionaries of their own).
func (pc *piece) reset(rows []parsed, dicts *pieceDicts) {
	pc.rows = rows
	o := &pc.ods
	for _, c := range []*dictCol{o.topic, o.source, o.format} {
		c.reset()
	}
	o.part.reset()
	o.off.reset()
	o.key.reset()
	o.raw.reset()
	o.ktime.reset()
	o.ok.reset()
	pc.odsMixed = false
	pc.good = pc.good[:0]
	pc.dwdMixed, pc.props = false, false
	pc.ids, pc.dead = 0, 0
	pc.at = pc.at[:0]
	d := &pc.dwd
	for _, c := range []*strCol{d.eventID, d.user, d.item} {
		c.reset()
	}
	for _, c := range []*dictCol{d.action, d.category, d.topic, d.source} {
		c.reset()
	}
	d.etime.reset()
	d.value.reset()
	d.part.reset()
	d.off.reset()
	pc.dwdShared = true
	if dicts != nil {
		o.topic.shared, o.source.shared, o.format.shared = dicts.odsTopic, dicts.odsSource, dicts.odsFormat
		// dwd's topic and source index ods's dictionaries: while every row parsed
		// they are ods's columns (see dwdShared).
		d.action.shared, d.category.shared, d.topic.shared, d.source.shared = dicts.dwdAction, dicts.dwdCategory, dicts.odsTopic, dicts.odsSource
	} else {
		for _, c := range []*dictCol{o.topic, o.source, o.format, d.action, d.category, d.topic, d.source} {
			c.shared = nil
		}
	}
}

// add appends row i of the piece (parsed from r, read under format) to its columns.
func (pc *piece) add(b streaming.BatchInfo, i int, r *streaming.Record, p *parsed, format string) {
	o := &pc.ods
	if day := floorDay(recordTime(b, r).Unix()); i == 0 {
		pc.odsDay = day
	} else if day != pc.odsDay {
		pc.odsMixed = true
	}
	o.topic.add(r.Topic)
	o.part.add(r.Partition)
	o.off.add(r.Offset)
	if r.Key == nil {
		o.key.null()
	} else {
		o.key.addText(r.Key)
	}
	if p.ascii {
		o.raw.addValid(r.Value)
	} else {
		o.raw.addText(r.Value)
	}
	o.ktime.opt(r.Time)
	source := p.source()
	o.source.opt(source)
	o.format.add(format)
	err := p.err()
	o.ok.add(err == nil)
	if err != nil {
		if !errors.Is(err, event.ErrHeader) {
			pc.dead++
		}
		if pc.dwdShared {
			pc.unshare(i)
		}
		return
	}
	if p.eventID != "" {
		pc.ids++
	}
	if day := floorDay(p.sec); len(pc.good) == 0 {
		pc.dwdDay = day
	} else if day != pc.dwdDay {
		pc.dwdMixed = true
	}
	pc.good = append(pc.good, int32(i))
	pc.at = append(pc.at, p.sec*1e9+int64(p.nsec))
	pc.props = pc.props || len(p.props()) > 0
	d := &pc.dwd
	d.eventID.opt(p.eventID)
	d.user.add(p.userID())
	d.item.opt(p.itemID())
	d.action.add(p.action)
	d.etime.add(arrow.Timestamp(p.unixMicro()))
	if p.hasValue {
		d.value.add(p.value)
	} else {
		d.value.null()
	}
	d.category.opt(p.category())
	if !pc.dwdShared {
		d.topic.add(r.Topic)
		d.part.add(r.Partition)
		d.off.add(r.Offset)
		d.source.opt(source)
	}
}

// unshare gives dwd its own topic, partition, offset and source columns, copies of
// ods's first n rows (all of which parsed).
func (pc *piece) unshare(n int) {
	o, d := &pc.ods, &pc.dwd
	d.topic.idx = append(d.topic.idx, o.topic.idx[:n]...)
	d.part.vals = append(d.part.vals, o.part.vals[:n]...)
	d.off.vals = append(d.off.vals, o.off.vals[:n]...)
	for j := range n {
		if o.source.nulls.n > 0 && o.source.nulls.isSet(j) {
			d.source.null()
		} else {
			d.source.idx = append(d.source.idx, o.source.idx[j])
		}
	}
	d.topic.lastI, d.source.lastI = -1, -1 // their idx grew behind add's back
	pc.dwdShared = false
}

// dwdTopic, dwdPart, dwdOff and dwdSource are dwd's columns of those.
func (pc *piece) dwdTopic() *dictCol {
	if pc.dwdShared {
		return pc.ods.topic
	}
	return pc.dwd.topic
}

func (pc *piece) dwdPart() *fixedCol[int32] {
	if pc.dwdShared {
		return pc.ods.part
	}
	return pc.dwd.part
}

func (pc *piece) dwdOff() *fixedCol[int64] {
	if pc.dwdShared {
		return pc.ods.off
	}
	return pc.dwd.off
}

func (pc *piece) dwdSource() *dictCol {
	if pc.dwdShared {
		return pc.ods.source
	}
	return pc.dwd.source
}

// piecesOf returns the pieces whose rows (all of them, or with good only those that
// parsed) are ps, in order; false when ps is anything else.
func piecesOf(all []*piece, ps []*parsed, good bool) ([]*piece, bool) {
	byFirst := make(map[*parsed]*piece, len(all))
	for _, pc := range all {
		switch {
		case !good && len(pc.rows) > 0:
			byFirst[&pc.rows[0]] = pc
		case good && len(pc.good) > 0:
			byFirst[&pc.rows[pc.good[0]]] = pc
		}
	}
	var out []*piece
	for k := 0; k < len(ps); {
		pc := byFirst[ps[k]]
		if pc == nil {
			return nil, false
		}
		n := len(pc.rows)
		if good {
			n = len(pc.good)
		}
		if k+n > len(ps) {
			return nil, false
		}
		for j, p := range ps[k : k+n] {
			row := j
			if good {
				row = int(pc.good[j])
			}
			if p != &pc.rows[row] {
				return nil, false
			}
		}
		out = append(out, pc)
		k += n
	}
	return out, true
}

// piecesByDay returns the pieces of ps as piecesOf does, when there are some and each
// fits a table's build from pieces, ordered by day keeping their order within a day:
// with every piece of one day, the rows in groupByDay's order.
func piecesByDay(all []*piece, ps []*parsed, good bool, fits func(*piece) bool, day func(*piece) int64) ([]*piece, bool) {
	pcs, ok := piecesOf(all, ps, good)
	if !ok || len(pcs) == 0 {
		return nil, false
	}
	for _, pc := range pcs {
		if !fits(pc) {
			return nil, false
		}
	}
	slices.SortStableFunc(pcs, func(a, b *piece) int { return int(day(a) - day(b)) })
	return pcs, true
}

// batchCols are the batch-wide columns of a table's chunks (the pieces give the
// others), kept for its next batch: a table's batches are written one after the
// other, and nothing keeps a written batch's arrays (the Parquet writers copy the
// values; the records are released once committed).
type batchCols struct {
	dt    *dictCol
	itime *fixedCol[arrow.Timestamp]
}

// reuseCols returns *bc emptied, made on first use (fresh when bc is nil).
func reuseCols(bc **batchCols, n int) *batchCols {
	if bc == nil || *bc == nil {
		c := &batchCols{dt: newDictCol(n), itime: newFixedCol[arrow.Timestamp](n)}
		if bc != nil {
			*bc = c
		}
		return c
	}
	c := *bc
	c.dt.reset()
	c.itime.reset()
	return c
}

// chunks builds one record of schema per piece: its rows' columns (cols: the
// piece's rows, from row at of the batch's dt and itime), each piece's columns as
// they are, its dictionary columns indexing the batch's dictionaries. The Parquet
// writer takes them as chunks of one batch (warehouse.Tx.WriteChunks): nothing is
// concatenated. Fresh batch-sized columns for the concatenation were ~40 MB to fault
// in for a cold 300k-record batch, and the copy itself 4% of its CPU.
func chunks(schema *arrow.Schema, c *batchCols, b streaming.BatchInfo, pcs []*piece, rows func(*piece) int, cols func(pc *piece, dt, itime arrow.Array) ([]any, error)) ([]arrow.RecordBatch, error) {
	n := len(c.dt.idx)
	fillIngest(c.itime, b.Time, n)
	dt, err := c.dt.array()
	if err != nil {
		return nil, err
	}
	defer dt.Release()
	itime := c.itime.array(tsType)
	defer itime.Release()
	recs := make([]arrow.RecordBatch, 0, len(pcs))
	release := func() {
		for _, r := range recs {
			r.Release()
		}
	}
	at := 0
	for _, pc := range pcs {
		m := rows(pc)
		d, it := array.NewSlice(dt, int64(at), int64(at+m)), array.NewSlice(itime, int64(at), int64(at+m))
		cs, err := cols(pc, d, it)
		if err == nil {
			var rec arrow.RecordBatch
			rec, err = strRecord(schema, m, cs)
			if err == nil {
				recs = append(recs, rec)
			}
		}
		if err != nil {
			release()
			return nil, err
		}
		at += m
	}
	return recs, nil
}

// plainNulls says whether a dictionary column is all null in every piece (then
// written as plain null strings; else every piece's chunk is a dictionary column).
func plainNulls(pcs []*piece, col func(*piece) *dictCol) bool {
	for _, pc := range pcs {
		if !col(pc).allNull() {
			return false
		}
	}
	return true
}

// odsFromPieces is odsRecord built from the batch's pieces, as chunks of one record
// (see chunks); false when they do not fit.
func odsFromPieces(b streaming.BatchInfo, ps []*parsed, all []*piece, bc **batchCols) ([]arrow.RecordBatch, bool, error) {
	pcs, ok := piecesByDay(all, ps, false, func(pc *piece) bool { return !pc.odsMixed }, func(pc *piece) int64 { return pc.odsDay })
	if !ok || !sharedDicts(pcs, func(pc *piece) []*dictCol { return []*dictCol{pc.ods.topic, pc.ods.source, pc.ods.format} }) {
		return nil, false, nil
	}
	c := reuseCols(bc, len(ps))
	var memo dayMemo
	for _, pc := range pcs {
		d := memo.dayOf(pc.odsDay * 86400)
		for range len(pc.rows) {
			c.dt.add(d)
		}
	}
	plainSource := plainNulls(pcs, func(pc *piece) *dictCol { return pc.ods.source })
	recs, err := chunks(ODSSchema, c, b, pcs, func(pc *piece) int { return len(pc.rows) }, func(pc *piece, dt, itime arrow.Array) ([]any, error) {
		o := &pc.ods
		dicts, err := dictArrays([]*dictCol{o.topic, o.source, o.format}, []bool{false, plainSource, false})
		if err != nil {
			return nil, err
		}
		return []any{dt, dicts[0], o.part, o.off, o.key, o.raw, o.ktime, itime, dicts[1], dicts[2], o.ok}, nil
	})
	return recs, true, err
}

// dwdFromPieces is dwdRecord built from the batch's pieces, as chunks of one record
// (see chunks); false when they do not fit.
func dwdFromPieces(b streaming.BatchInfo, ps []*parsed, all []*piece, bc **batchCols) ([]arrow.RecordBatch, bool, error) {
	pcs, ok := piecesByDay(all, ps, true, func(pc *piece) bool { return !pc.dwdMixed && !pc.props }, func(pc *piece) int64 { return pc.dwdDay })
	if !ok || !sharedDicts(pcs, func(pc *piece) []*dictCol {
		return []*dictCol{pc.dwd.action, pc.dwd.category, pc.dwdTopic(), pc.dwdSource()}
	}) {
		return nil, false, nil
	}
	c := reuseCols(bc, len(ps))
	var memo dayMemo
	for _, pc := range pcs {
		day := memo.dayOf(pc.dwdDay * 86400)
		for range len(pc.good) {
			c.dt.add(day)
		}
	}
	plainCategory := plainNulls(pcs, func(pc *piece) *dictCol { return pc.dwd.category })
	plainSource := plainNulls(pcs, (*piece).dwdSource)
	recs, err := chunks(DWDSchema, c, b, pcs, func(pc *piece) int { return len(pc.good) }, func(pc *piece, dt, itime arrow.Array) ([]any, error) {
		d := &pc.dwd
		dicts, err := dictArrays([]*dictCol{d.action, d.category, pc.dwdTopic(), pc.dwdSource()}, []bool{false, plainCategory, false, plainSource})
		if err != nil {
			return nil, err
		}
		return []any{dt, d.eventID, d.user, d.item, dicts[0], d.etime, d.value, dicts[1], nullProps(len(pc.good)), dicts[2], pc.dwdPart(), pc.dwdOff(), itime, dicts[3]}, nil
	})
	return recs, true, err
}

// sharedDicts says whether the pieces' dictionary columns (cols) each index one
// dictionary shared by all of them.
func sharedDicts(pcs []*piece, cols func(*piece) []*dictCol) bool {
	first := cols(pcs[0])
	for _, pc := range pcs {
		for i, c := range cols(pc) {
			if c.shared == nil || c.shared != first[i].shared {
				return false
			}
		}
	}
	return true
}

// dictArrays makes the arrays of cols (plainNulls[i]: cols[i] is all null in every
// piece).
func dictArrays(cols []*dictCol, plainNulls []bool) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(cols))
	for i, c := range cols {
		a, err := c.arrayNulls(plainNulls[i])
		if err != nil {
			for _, o := range out[:i] {
				o.Release()
			}
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

func fillIngest(c *fixedCol[arrow.Timestamp], t time.Time, n int) {
	v := arrow.Timestamp(t.UnixMicro())
	for range n {
		c.add(v)
	}
}

// rowSplit is a batch's rows that parsed, and those of them with and without an
// event id, in batch order.
type rowSplit struct{ good, withID, noID []*parsed }

// splitRows splits ps. When ps are exactly the batch's pieces' rows, the pieces' counts
// say whether all parsed and whether all or none carry an id (the usual batch): the
// rows are not walked. A part that is all of ps is ps itself.
func splitRows(ps []*parsed, all []*piece) rowSplit {
	if pcs, ok := piecesOf(all, ps, false); ok {
		good, ids := 0, 0
		for _, pc := range pcs {
			good, ids = good+len(pc.good), ids+pc.ids
		}
		switch {
		case good == len(ps) && ids == 0:
			return rowSplit{good: ps, noID: ps}
		case good == len(ps) && ids == good:
			return rowSplit{good: ps, withID: ps}
		}
	}
	var s rowSplit
	for _, p := range ps {
		if p.err() != nil {
			continue
		}
		s.good = append(s.good, p)
		if p.eventID != "" {
			s.withID = append(s.withID, p)
		} else {
			s.noID = append(s.noID, p)
		}
	}
	// Streams never change their elements: a part equal to its whole is the whole.
	if len(s.good) == len(ps) {
		s.good = ps
	}
	switch len(s.good) {
	case len(s.noID):
		s.noID = s.good
	case len(s.withID):
		s.withID = s.good
	}
	return s
}

// deadLetters is the number of rows of pcs for dlq_events.
func deadLetters(pcs []*piece) int {
	n := 0
	for _, pc := range pcs {
		n += pc.dead
	}
	return n
}

// dims appends the window elements of the piece's rows that parsed (see NewEvents):
// an event below the watermark wm as itself (late), the others as counts per pane of
// slide ns and key, from the piece's dwd dictionaries.
func (pc *piece) dims(out []dimEvent, wm, slide int64) []dimEvent {
	d := &pc.dwd
	actions, cats := newDimCounts(d.action, false), newDimCounts(d.category, true)
	pane := int64(math.MinInt64)
	for j, at := range pc.at {
		if at < wm {
			out = eventDims(out, &pc.rows[pc.good[j]])
			continue
		}
		if p := floorDiv(at, slide); p != pane {
			out = cats.flush(actions.flush(out))
			pane = p
		}
		actions.add(d.action.idx[j], at)
		if d.category.nulls.n == 0 || !d.category.nulls.isSet(j) {
			cats.add(d.category.idx[j], at)
		}
	}
	return cats.flush(actions.flush(out))
}

// dimCounts counts a pane's events per value of a dictionary column.
type dimCounts struct {
	col      *dictCol
	n, at    []int64
	touched  []int32
	category bool
}

func newDimCounts(c *dictCol, category bool) *dimCounts {
	k := c.values().len()
	return &dimCounts{col: c, n: make([]int64, k), at: make([]int64, k), category: category}
}

func (c *dimCounts) add(i int32, at int64) {
	if c.n[i] == 0 {
		c.touched = append(c.touched, i)
		c.at[i] = at
	}
	c.n[i]++
	c.at[i] = max(c.at[i], at)
}

// flush appends the pane's counts, first-counted value first, and clears them.
func (c *dimCounts) flush(out []dimEvent) []dimEvent {
	for _, i := range c.touched {
		out = append(out, dimEvent{key: c.col.values().view(int(i)), n: c.n[i], at: c.at[i], category: c.category})
		c.n[i] = 0
	}
	c.touched = c.touched[:0]
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
