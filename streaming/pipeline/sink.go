package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/warehouse"
)

// tableSink appends one batch's rows to a warehouse table, at most once per batch id.
type tableSink struct {
	pipeline string
	table    *warehouse.Table
	schema   *arrow.Schema
	// committed is the last batch id the table holds for this pipeline (-1 none).
	committed int64
	known     bool
}

func openSink(ctx context.Context, w *warehouse.Warehouse, pipeline, name string, schema *arrow.Schema) (*tableSink, error) {
	t, err := w.CreateTable(ctx, warehouse.TableSpec{Name: name, Schema: schema, PartitionKeys: []string{"dt"}})
	if err != nil {
		return nil, fmt.Errorf("cannot open table %s: %w", name, err)
	}
	return &tableSink{pipeline: pipeline, table: t, schema: schema, committed: -1}, nil
}

// lastBatch reads the table's last committed batch of this pipeline from the current
// snapshot's properties.
func (s *tableSink) lastBatch() (streaming.BatchInfo, bool, error) {
	snap, err := s.table.Current()
	if err != nil {
		return streaming.BatchInfo{}, false, fmt.Errorf("cannot read table %s: %w", s.table.Name(), err)
	}
	return batchOf(snap, s.pipeline)
}

func batchOf(snap *warehouse.Snapshot, pipeline string) (streaming.BatchInfo, bool, error) {
	p := snap.Properties
	if p[streaming.PropPipeline] != pipeline || p[streaming.PropBatchID] == "" {
		return streaming.BatchInfo{}, false, nil
	}
	id, err := strconv.ParseInt(p[streaming.PropBatchID], 10, 64)
	if err != nil {
		return streaming.BatchInfo{}, false, fmt.Errorf("table %s snapshot %d: bad %s %q", snap.Table().Name(), snap.ID, streaming.PropBatchID, p[streaming.PropBatchID])
	}
	rs, err := streaming.DecodeRanges(p[streaming.PropRanges])
	if err != nil {
		return streaming.BatchInfo{}, false, err
	}
	bt, err := time.Parse(time.RFC3339Nano, p[streaming.PropBatchAt])
	if err != nil {
		return streaming.BatchInfo{}, false, fmt.Errorf("table %s snapshot %d: bad %s: %w", snap.Table().Name(), snap.ID, streaming.PropBatchAt, err)
	}
	return streaming.BatchInfo{ID: id, Time: bt, Ranges: rs}, true, nil
}

// write commits the rows of recs — chunks of one record of the batch's rows, in
// order; nil or none when the batch has no rows for this table — unless the table
// already holds batch b. It releases recs.
func (s *tableSink) write(ctx context.Context, b streaming.BatchInfo, recs ...arrow.RecordBatch) error {
	var rows int64
	for _, r := range recs {
		if r != nil {
			defer r.Release()
			rows += r.NumRows()
		}
	}
	recs = slices.DeleteFunc(slices.Clone(recs), func(r arrow.RecordBatch) bool { return r == nil || r.NumRows() == 0 })
	if !s.known {
		last, ok, err := s.lastBatch()
		if err != nil {
			return err
		}
		if ok {
			s.committed = last.ID
		}
		s.known = true
	}
	if b.ID <= s.committed {
		return nil // replay of a batch this table already holds
	}
	if rows == 0 {
		return nil
	}
	tx, err := s.table.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cannot write table %s: %w", s.table.Name(), err)
	}
	defer tx.Abort()
	// Check again under the writer lock: the properties are the truth.
	if last, ok, err := batchOf(tx.Base(), s.pipeline); err != nil {
		return err
	} else if ok && b.ID <= last.ID {
		s.committed = last.ID
		return nil
	}
	if err := tx.WriteChunks(recs); err != nil {
		return fmt.Errorf("cannot write table %s: %w", s.table.Name(), err)
	}
	_, err = tx.Commit(ctx, warehouse.CommitOptions{
		Operation:      warehouse.OpAppend,
		ExpectedParent: warehouse.Parent(tx.Base().ID),
		Properties: map[string]string{
			streaming.PropPipeline: s.pipeline,
			streaming.PropBatchID:  strconv.FormatInt(b.ID, 10),
			streaming.PropBatchAt:  b.Time.UTC().Format(time.RFC3339Nano),
			streaming.PropRanges:   b.Ranges.Encode(),
		},
	})
	if err != nil {
		return fmt.Errorf("cannot commit batch %d to table %s: %w", b.ID, s.table.Name(), err)
	}
	s.committed = b.ID
	if afterCommit != nil {
		afterCommit(s.table.Name(), b.ID)
	}
	return nil
}

// afterCommit is a test hook (fault injection between table commits).
var afterCommit func(table string, batch int64)

// builder helps fill an Arrow record column by column.
type builder struct {
	b *array.RecordBuilder
}

func newBuilder(schema *arrow.Schema) *builder {
	return &builder{b: array.NewRecordBuilder(memory.DefaultAllocator, schema)}
}

func (b *builder) str(i int) *array.StringBuilder   { return b.b.Field(i).(*array.StringBuilder) }
func (b *builder) i32(i int) *array.Int32Builder    { return b.b.Field(i).(*array.Int32Builder) }
func (b *builder) i64(i int) *array.Int64Builder    { return b.b.Field(i).(*array.Int64Builder) }
func (b *builder) ts(i int) *array.TimestampBuilder { return b.b.Field(i).(*array.TimestampBuilder) }

func (b *builder) optStr(i int, v string) {
	if v == "" {
		b.str(i).AppendNull()
		return
	}
	b.str(i).Append(v)
}

func (b *builder) record() arrow.RecordBatch {
	rec := b.b.NewRecordBatch()
	b.b.Release()
	return rec
}
