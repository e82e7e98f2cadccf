package warehouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Acceptance: overwrite-partition twice with the same input gives the same table.
func TestOverwritePartitionIdempotent(t *testing.T) {
	ctx := context.Background()
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "dws_user_tag_daily")
	base := events(900, 3, 0) // days 1..3
	defer base.Release()
	appendRec(t, tb, base, CommitOptions{})

	// Re-run "day 2" twice with the same input: 500 rows for 2024-05-02.
	rerun := func() *Snapshot {
		rec := events(500, 1, 10_000)
		defer rec.Release()
		tx, err := tb.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.WritePartition(P("dt", "2024-05-02"), rec); err != nil {
			t.Fatal(err)
		}
		s, err := tx.Commit(ctx, CommitOptions{Operation: OpOverwritePartitions})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := rerun()
	second := rerun()
	a, b := rowsOf(t, first), rowsOf(t, second)
	if !slices.Equal(a, b) || len(a) != 600+500 {
		t.Fatalf("overwrite not idempotent: %d vs %d rows", len(a), len(b))
	}
	if first.Summary.RemovedRows != 300 || second.Summary.RemovedRows != 500 {
		t.Fatalf("removed rows %d, %d", first.Summary.RemovedRows, second.Summary.RemovedRows)
	}
	if len(second.FilesIn(P("dt", "2024-05-02"))) != 1 {
		t.Fatalf("day 2 files: %v", second.FilesIn(P("dt", "2024-05-02")))
	}
	// An empty re-run that names its partition empties it.
	tx, _ := tb.Begin(ctx)
	s, err := tx.Commit(ctx, CommitOptions{Operation: OpOverwritePartitions, Partitions: []Partition{P("dt", "2024-05-02")}})
	if err != nil || s.Rows() != 600 {
		t.Fatalf("empty overwrite: %v rows %d", err, s.Rows())
	}
	// Delete a partition.
	tx, _ = tb.Begin(ctx)
	s, err = tx.Commit(ctx, CommitOptions{Operation: OpDeletePartitions, Partitions: []Partition{P("dt", "2024-05-01")}})
	if err != nil || s.Rows() != 300 || len(s.Partitions()) != 1 {
		t.Fatalf("delete partition: %v rows %d", err, s.Rows())
	}
}

// Acceptance: compaction keeps every row (counts and checksums) and cuts the file
// count.
func TestCompactionKeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	for i := range 12 { // 12 micro-batches x 3 days = 36 small files
		rec := events(250, 3, i*250)
		appendRec(t, tb, rec, CommitOptions{})
		rec.Release()
	}
	before, _ := tb.Current()
	beforeRows := rowsOf(t, before)
	res, err := tb.Compact(ctx, CompactOptions{Properties: map[string]string{"by": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	after := res.Snapshot
	if after == nil || after.Operation != OpReplace || after.Properties["by"] != "test" {
		t.Fatalf("compaction snapshot %+v", after)
	}
	if len(before.Files) != 36 || len(after.Files) != 3 || res.FilesBefore != 36 || res.FilesAfter != 3 || res.RowsRewritten != 3000 {
		t.Fatalf("files %d -> %d, result %+v", len(before.Files), len(after.Files), res)
	}
	afterRows := rowsOf(t, after)
	if len(afterRows) != len(beforeRows) || checksum(afterRows) != checksum(beforeRows) || !slices.Equal(afterRows, beforeRows) {
		t.Fatalf("rows changed: %d -> %d", len(beforeRows), len(afterRows))
	}
	// Old files stay for pinned readers until expiry.
	if rows := rowsOf(t, before); len(rows) != 3000 {
		t.Fatal("old snapshot unreadable after compaction")
	}
	// Nothing left to do: no new snapshot.
	res2, err := tb.Compact(ctx, CompactOptions{})
	if err != nil || res2.Snapshot != nil {
		t.Fatalf("second compaction: %+v %v", res2, err)
	}
}

func checksum(rows []string) uint64 {
	var h uint64 = 14695981039346656037
	for _, r := range rows {
		for i := 0; i < len(r); i++ {
			h = (h ^ uint64(r[i])) * 1099511628211
		}
		h = (h ^ '\n') * 1099511628211
	}
	return h
}

// Retention drops old partitions; expiry then removes old snapshots and the files
// only they referenced, and never the current snapshot's.
func TestRetentionAndExpire(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2024, 5, 10, 8, 0, 0, 0, time.UTC)
	o := DefaultOptions()
	o.Now = func() time.Time { return clock }
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	tb := createEvents(t, w, "ods_events")
	rec := events(1000, 10, 0) // 2024-05-01 .. 2024-05-10
	defer rec.Release()
	appendRec(t, tb, rec, CommitOptions{})
	clock = clock.Add(time.Hour)
	snap, dropped, err := tb.Retain(ctx, 3, clock) // keep 05-07 .. 05-10
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 6 || snap.Rows() != 400 || len(snap.Partitions()) != 4 || snap.Partitions()[0].Path() != "dt=2024-05-07" {
		t.Fatalf("retention dropped %v, rows %d", dropped, snap.Rows())
	}
	if s, d, err := tb.Retain(ctx, 3, clock); s != nil || d != nil || err != nil {
		t.Fatalf("second retention: %v %v %v", s, d, err)
	}
	if n := len(dataFiles(t, tb.Dir())); n != 10 {
		t.Fatalf("files before expiry: %d", n)
	}
	// Too young to expire.
	res, err := tb.Expire(ctx, ExpireOptions{OlderThan: clock.Add(-2 * time.Hour)})
	if err != nil || len(res.Snapshots) != 0 || res.Files != 0 {
		t.Fatalf("early expire: %+v %v", res, err)
	}
	res, err = tb.Expire(ctx, ExpireOptions{OlderThan: clock.Add(time.Hour)})
	if err != nil || !slices.Equal(res.Snapshots, []int64{1, 2}) || res.Files != 6 {
		t.Fatalf("expire: %+v %v", res, err)
	}
	if n := len(dataFiles(t, tb.Dir())); n != 4 {
		t.Fatalf("files after expiry: %d", n)
	}
	if _, err := tb.Snapshot(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired snapshot: %v", err)
	}
	cur, _ := tb.Current()
	if cur.ID != 3 || len(rowsOf(t, cur)) != 400 {
		t.Fatalf("current after expiry: %d", cur.ID)
	}
}

// Time travel: by id and by timestamp; History lists every snapshot.
func TestTimeTravel(t *testing.T) {
	clock := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	o := DefaultOptions()
	o.Now = func() time.Time { return clock }
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	tb := createEvents(t, w, "ods_events")
	for i := range 3 {
		clock = clock.Add(time.Minute)
		rec := events(100, 1, i*100)
		appendRec(t, tb, rec, CommitOptions{Properties: map[string]string{"i": string(rune('a' + i))}})
		rec.Release()
	}
	hist, err := tb.History()
	if err != nil || len(hist) != 4 {
		t.Fatalf("history %d %v", len(hist), err)
	}
	s, err := tb.AsOf(time.Date(2024, 5, 1, 0, 2, 30, 0, time.UTC))
	if err != nil || s.ID != 3 || s.Rows() != 200 || s.Properties["i"] != "b" {
		t.Fatalf("as of: %+v %v", s, err)
	}
	for i, h := range hist { // exactly at each commit time, and just before the next
		for _, ts := range []time.Time{h.Time, h.Time.Add(30 * time.Second)} {
			if s, err := tb.AsOf(ts); err != nil || s.ID != hist[i].ID {
				t.Fatalf("as of %s: %v %v, want %d", ts, s, err, hist[i].ID)
			}
		}
	}
	if _, err := tb.AsOf(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("as of before creation: %v", err)
	}
	s, err = tb.Snapshot(2)
	if err != nil || len(rowsOf(t, s)) != 100 {
		t.Fatalf("snapshot 2: %v", err)
	}
}

// Schema evolution: adding a nullable column works and old files read with nulls;
// incompatible changes are refused with a message.
func TestSchemaEvolution(t *testing.T) {
	ctx := context.Background()
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	rec := events(10, 1, 0)
	defer rec.Release()
	appendRec(t, tb, rec, CommitOptions{})

	// Same spec again: no new snapshot.
	createEvents(t, w, "ods_events")
	if cur, _ := tb.Current(); cur.ID != 2 {
		t.Fatalf("re-create made snapshot %d", cur.ID)
	}
	// A writer that documents nothing does not undo the docs either.
	undocumented := eventsSchema().Fields()
	for i := range undocumented {
		undocumented[i].Metadata = arrow.Metadata{}
	}
	if _, err := w.CreateTable(ctx, TableSpec{Name: "ods_events", Schema: arrow.NewSchema(undocumented, nil), PartitionKeys: []string{"dt"}}); err != nil {
		t.Fatal(err)
	}
	if cur, _ := tb.Current(); cur.ID != 2 || cur.Doc != "test events" || FieldDoc(cur.Schema.Field(0)) != "who" {
		t.Fatalf("undocumented re-create: snapshot %d doc %q", cur.ID, cur.Doc)
	}
	fields := eventsSchema().Fields()
	evolved := arrow.NewSchema(append(slices.Clone(fields[:5]), Field("source", arrow.BinaryTypes.String, "lineage"), fields[5]), nil)
	if _, err := w.CreateTable(ctx, TableSpec{Name: "ods_events", Schema: evolved, PartitionKeys: []string{"dt"}, Doc: "test events"}); err != nil {
		t.Fatal(err)
	}
	cur, _ := tb.Current()
	if cur.Operation != OpSchema || cur.Schema.NumFields() != 7 || !slices.Equal(cur.Files[0].Missing, []string{"source"}) {
		t.Fatalf("evolved: op %s fields %d missing %v", cur.Operation, cur.Schema.NumFields(), cur.Files[0].Missing)
	}
	// Old rows read with a null "source"; old-shaped records are still accepted.
	for _, r := range rowsOf(t, cur) {
		if !strings.HasSuffix(r, "|NULL") {
			t.Fatalf("old row %q should end with a null source", r)
		}
	}
	appendRec(t, tb, rec, CommitOptions{})

	bad := []struct {
		schema *arrow.Schema
		keys   []string
		want   string
	}{
		{arrow.NewSchema(fields[1:], nil), []string{"dt"}, `column "user_id" is missing`},
		{arrow.NewSchema(append(slices.Clone(fields[:4]), Field("value", arrow.BinaryTypes.String, ""), fields[5], Field("source", arrow.BinaryTypes.String, "")), nil), []string{"dt"}, `column "value" changes type`},
		{arrow.NewSchema(append(slices.Clone(evolved.Fields()), RequiredField("n", arrow.PrimitiveTypes.Int64, "")), nil), []string{"dt"}, `new column "n" must be nullable`},
		{evolved, nil, "partition keys are [dt]"},
	}
	for _, c := range bad {
		_, err := w.CreateTable(ctx, TableSpec{Name: "ods_events", Schema: c.schema, PartitionKeys: c.keys})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error %q, got %v", c.want, err)
		}
	}
}

// Bad input gets a clear error and writes nothing.
func TestBadRecordsRefused(t *testing.T) {
	ctx := context.Background()
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	mem := memory.DefaultAllocator
	mk := func(fields []arrow.Field, cols ...arrow.Array) arrow.RecordBatch {
		return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(cols[0].Len()))
	}
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"u1", "u2"}, nil)
	users := sb.NewArray()
	db := array.NewDate32Builder(mem)
	db.AppendValues([]arrow.Date32{arrow.Date32FromTime(day0), 0}, []bool{true, false})
	nullDays := db.NewArray()
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{1, 2}, nil)
	ints := ib.NewArray()

	cases := []struct {
		rec  arrow.RecordBatch
		want string
	}{
		{mk([]arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}}, users), `no partition column "dt"`},
		{mk([]arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}, {Name: "dt", Type: arrow.FixedWidthTypes.Date32, Nullable: true}}, users, nullDays), `partition column "dt" has 1 null`},
		{mk([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}}, ints), `column "user_id" has type int64`},
		{mk([]arrow.Field{{Name: "bogus", Type: arrow.BinaryTypes.String}}, users), `"bogus" is not in the table schema`},
	}
	for _, c := range cases {
		tx, err := tb.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		if strings.Contains(c.want, "partition") {
			werr = tx.Write(c.rec)
		} else {
			werr = tx.WritePartition(P("dt", "2024-05-01"), c.rec)
		}
		if werr == nil || !strings.Contains(werr.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, werr)
		}
		tx.Abort()
	}
	if cur, _ := tb.Current(); cur.ID != 1 || len(dataFiles(t, tb.Dir())) != 0 {
		t.Fatalf("bad input left traces")
	}
	if _, err := w.CreateTable(ctx, TableSpec{Name: "xyz_events", Schema: eventsSchema()}); err == nil || !strings.Contains(err.Error(), "layer one of") {
		t.Fatalf("bad layer: %v", err)
	}
}

// Files a commit removes leave directory globs at once (hidden as .name.removed),
// stay readable through the snapshots that still list them, and a crash that left
// one visible is finished by the next Open.
func TestRemovedFilesLeaveGlobs(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	w := openTest(t, root)
	tb := createEvents(t, w, "ods_events")
	for i := range 3 {
		rec := events(100, 1, i*100)
		appendRec(t, tb, rec, CommitOptions{})
		rec.Release()
	}
	before, _ := tb.Current()
	res, err := tb.Compact(ctx, CompactOptions{})
	if err != nil || res.Snapshot == nil {
		t.Fatal(err)
	}
	visible := func() []string {
		var out []string
		for _, f := range dataFiles(t, tb.Dir()) {
			if !strings.Contains(f, "/.") {
				out = append(out, f)
			}
		}
		return out
	}
	if v := visible(); len(v) != 1 || v[0] != res.Snapshot.Files[0].Path {
		t.Fatalf("visible after compaction: %v", v)
	}
	if n := len(rowsOf(t, before)); n != 300 {
		t.Fatalf("old snapshot reads %d rows", n)
	}
	// Simulate a crash between publishing and hiding: un-hide one old file.
	old := filepath.Join(tb.Dir(), filepath.FromSlash(before.Files[0].Path))
	if err := os.Rename(hiddenPath(old), old); err != nil {
		t.Fatal(err)
	}
	if len(visible()) != 2 {
		t.Fatal("setup: file not visible")
	}
	openTest(t, root)
	if len(visible()) != 1 {
		t.Fatalf("Open did not hide the removed file: %v", visible())
	}
	if n := len(rowsOf(t, before)); n != 300 {
		t.Fatalf("old snapshot reads %d rows after recovery", n)
	}
}

// Compaction holds no lock while it rewrites: appends committed meanwhile are kept
// (the compaction rebases onto them); an overwrite of its inputs makes it fail
// with ErrConflict and changes nothing.
func TestCompactionConcurrentWithWriters(t *testing.T) {
	ctx := context.Background()
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	for i := range 4 {
		rec := events(100, 2, i*100)
		appendRec(t, tb, rec, CommitOptions{})
		rec.Release()
	}
	defer func() { testHookBeforeCompactCommit = nil }()

	extra := events(50, 2, 9000)
	defer extra.Release()
	testHookBeforeCompactCommit = func() {
		// Begin must not wait for the compaction: it holds no lock yet.
		appendRec(t, tb, extra, CommitOptions{Properties: map[string]string{"batch": "5"}})
	}
	res, err := tb.Compact(ctx, CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Snapshot
	if s.ParentID != 6 || s.Rows() != 450 || len(s.Files) != 2+2 || res.FilesBefore != 8 {
		t.Fatalf("rebased compaction: parent %d rows %d files %d before %d", s.ParentID, s.Rows(), len(s.Files), res.FilesBefore)
	}

	for i := range 3 {
		rec := events(100, 2, i*100)
		appendRec(t, tb, rec, CommitOptions{})
		rec.Release()
	}
	testHookBeforeCompactCommit = func() {
		tx, err := tb.Begin(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := tx.Commit(ctx, CommitOptions{Operation: OpDeletePartitions, Partitions: []Partition{P("dt", "2024-05-01")}}); err != nil {
			t.Error(err)
		}
	}
	before := len(listFiles(t, tb.Dir()))
	_, err = tb.Compact(ctx, CompactOptions{})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "removed by a newer snapshot while compacting") {
		t.Fatalf("conflicting compaction: %v", err)
	}
	cur, _ := tb.Current()
	if cur.Operation != OpDeletePartitions || len(listFiles(t, tb.Dir())) != before+1 /* new manifest */ {
		t.Fatalf("failed compaction left traces: op %s, files %d -> %d", cur.Operation, before, len(listFiles(t, tb.Dir())))
	}
}
