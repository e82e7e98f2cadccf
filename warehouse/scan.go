package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// scanBatchRows is the batch size records are read in.
const scanBatchRows = 64 * 1024

// ScanFunc receives one batch of a file's rows in the snapshot's data schema
// (DataSchema: every non-partition column, nulls where the file lacks a column);
// the file's partition values are in f.Partition. rec is released after the call
// returns; Retain it to keep it.
type ScanFunc func(f DataFile, rec arrow.RecordBatch) error

// Scan reads every file of the snapshot in path order.
func (s *Snapshot) Scan(ctx context.Context, fn ScanFunc) error {
	for _, f := range s.Files {
		if err := s.ScanFile(ctx, f, fn); err != nil {
			return err
		}
	}
	return nil
}

// ScanFile reads one file of the snapshot.
func (s *Snapshot) ScanFile(ctx context.Context, f DataFile, fn ScanFunc) error {
	path := s.AbsPath(f)
	pf, err := file.OpenParquetFile(path, false)
	if errors.Is(err, os.ErrNotExist) {
		// A commit hid it between AbsPath and the open.
		path = s.AbsPath(f)
		pf, err = file.OpenParquetFile(path, false)
	}
	if err != nil {
		return fmt.Errorf("cannot open parquet file %q: %w", path, err)
	}
	return scanParquet(ctx, pf, path, s.DataSchema(), func(rec arrow.RecordBatch) error { return fn(f, rec) })
}

// scanParquet reads pf (opened from path; closed here) and hands batches conformed to want to fn.
func scanParquet(ctx context.Context, pf *file.Reader, path string, want *arrow.Schema, fn func(arrow.RecordBatch) error) error {
	defer pf.Close()
	mem := memory.DefaultAllocator
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: scanBatchRows}, mem)
	if err != nil {
		return fmt.Errorf("cannot read parquet file %q: %w", path, err)
	}
	if pf.NumRows() == 0 {
		return nil
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("cannot read parquet file %q: %w", path, err)
	}
	defer rr.Release()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := rr.Read()
		if err == io.EOF || rec == nil && err == nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read parquet file %q: %w", path, err)
		}
		out, err := project(mem, rec, want)
		if err != nil {
			return fmt.Errorf("parquet file %q: %w", path, err)
		}
		err = fn(out)
		out.Release()
		if err != nil {
			return err
		}
	}
}

// project maps rec onto want by column name: missing nullable columns become
// nulls, equivalent types are relabelled.
func project(mem memory.Allocator, rec arrow.RecordBatch, want *arrow.Schema) (arrow.RecordBatch, error) {
	n := int(rec.NumRows())
	cols := make([]arrow.Array, want.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range want.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			if !f.Nullable {
				return nil, fmt.Errorf("lacks NOT NULL column %q", f.Name)
			}
			cols[i] = array.MakeArrayOfNull(mem, f.Type, n)
			continue
		}
		c := rec.Column(idx[0])
		if !sameType(c.DataType(), f.Type) {
			return nil, fmt.Errorf("column %q has type %s, the table has %s", f.Name, c.DataType(), f.Type)
		}
		c.Retain()
		if !arrow.TypeEqual(c.DataType(), f.Type) {
			c = retype(c, f.Type)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(want, cols, int64(n)), nil
}

// parquetInfo reads a file's footer: Arrow schema and row count.
func parquetInfo(path string) (*arrow.Schema, int64, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open parquet file %q: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read parquet file %q: %w", path, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read schema of %q: %w", path, err)
	}
	return sc, pf.NumRows(), nil
}
