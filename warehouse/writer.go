package warehouse

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Tx is one writer's transaction on a table: it holds the table's writer lock from
// Begin until Commit or Abort, writes Parquet files that no reader can see, and
// publishes them all at once in Commit. A Tx is not safe for concurrent use.
type Tx struct {
	t      *Table
	base   *Snapshot // nil only while CreateTable makes the first snapshot
	lk     *fileLock
	id     string
	mem    memory.Allocator
	data   *arrow.Schema // base's data schema, built on first use
	target int64         // file size to roll at; 0 = Options.TargetFileBytes
	// lk is nil for an optimistic transaction (compaction): it writes without the
	// lock and takes it only to commit, rebasing onto newer snapshots if they kept
	// the files it replaces.

	writers map[string]*partWriter // by partition path
	uses    int64                  // writer use counter (least recently used is closed first)
	staged  []stagedFile
	remove  map[string]bool // file paths a replace commit drops
	seq     int
	closed  bool
	err     error // sticky: a failed write poisons the transaction
}

type stagedFile struct {
	src      string // absolute path now
	name     string // final base name, part-<txid>-<seq>.parquet
	imported bool   // someone else's file: on failure give it back instead of deleting
	synced   bool   // fsynced
	df       DataFile
}

// fileName is the final base name of the transaction's seq-th file.
func (tx *Tx) fileName(seq int) string {
	return fmt.Sprintf("%s%s-%05d%s", dataPrefix, tx.id, seq, dataExt)
}

// pendingPath is where a committed file waits between the commit point and its
// rename to final: the final name hidden and with the temp suffix.
func pendingPath(final string) string {
	return filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+tmpExt)
}

// beginOptimistic starts a transaction that does not hold the lock while it
// writes (see Tx.lk).
func (t *Table) beginOptimistic() (*Tx, error) {
	base, err := t.Current()
	if err != nil {
		return nil, err
	}
	return &Tx{
		t: t, base: base, id: newTxID(t.w.opts.Now()), mem: writeMem,
		writers: map[string]*partWriter{}, remove: map[string]bool{},
	}, nil
}

// Begin starts a transaction, waiting up to Options.LockTimeout for the table's
// writer lock (ErrLocked after that).
func (t *Table) Begin(ctx context.Context) (*Tx, error) {
	if err := os.MkdirAll(filepath.Join(t.dir, metaDir), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create table dir %q: %w", t.dir, err)
	}
	lk, err := lock(ctx, t.lockPath(), t.w.opts.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	base, err := t.Current()
	if err != nil && !errors.Is(err, ErrNotFound) {
		lk.unlock()
		return nil, err
	}
	return &Tx{
		t: t, base: base, lk: lk, id: newTxID(t.w.opts.Now()), mem: writeMem,
		writers: map[string]*partWriter{}, remove: map[string]bool{},
	}, nil
}

// Base is the snapshot the transaction started from (nil for a table being created).
func (tx *Tx) Base() *Snapshot { return tx.base }

func newTxID(now time.Time) string {
	return strconv.FormatInt(now.UnixMilli(), 36) + "-" + randHex(4)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (tx *Tx) usable() error {
	if tx.closed {
		return ErrClosed
	}
	if tx.err != nil {
		return tx.err
	}
	if tx.base == nil {
		return fmt.Errorf("table %s has no schema yet; create it with CreateTable", tx.t.name)
	}
	return nil
}

// Write adds a record's rows. For a partitioned table the record must carry the
// partition-key columns (a key column may be an Arrow dictionary of its values);
// rows are split by their values (non-null). Columns are
// matched by name; nullable table columns the record lacks are written as nulls;
// unknown columns or wrong types are errors and nothing of the record is written.
func (tx *Tx) Write(rec arrow.RecordBatch) error {
	return tx.WriteChunks([]arrow.RecordBatch{rec})
}

// WriteChunks adds the rows of recs, in order, as Write adds those of one record
// holding them all: the same partitions, files and row groups (a row group spans
// chunks), each column written chunk after chunk with no concatenated copy of the
// batch made first. The records must share one schema; a dictionary column
// should carry the same dictionary in every chunk (where it changes, the column
// chunk falls back to plain encoding, as pqarrow's writer does). Nothing of recs is
// written when one of them is refused.
func (tx *Tx) WriteChunks(recs []arrow.RecordBatch) error {
	if err := tx.usable(); err != nil {
		return err
	}
	type part struct {
		part Partition
		recs []arrow.RecordBatch
	}
	var parts []*part
	byPath := map[string]*part{}
	defer func() {
		for _, p := range parts {
			for _, r := range p.recs {
				r.Release()
			}
		}
	}()
	for i, rec := range recs {
		if i > 0 && !rec.Schema().Equal(recs[0].Schema()) {
			return fmt.Errorf("table %s: chunk %d has schema %s, the first %s", tx.t.name, i, rec.Schema(), recs[0].Schema())
		}
		groups, err := tx.groups(rec)
		if err != nil {
			return err
		}
		// Conform every piece before writing any, so a bad record writes nothing.
		for _, g := range groups {
			sub, err := tx.conform(rec, g.runs)
			if err != nil {
				return err
			}
			p := byPath[g.part.Path()]
			if p == nil {
				p = &part{part: g.part}
				byPath[g.part.Path()] = p
				parts = append(parts, p)
			}
			p.recs = append(p.recs, sub)
		}
	}
	for _, p := range parts {
		if err := tx.writeData(p.part, p.recs...); err != nil {
			return err
		}
	}
	return nil
}

// groups splits rec's rows by partition (one group of every row when the table has
// no partition keys).
func (tx *Tx) groups(rec arrow.RecordBatch) ([]group, error) {
	keys := tx.base.PartitionKeys
	if len(keys) == 0 {
		p, err := Partition(nil).normalize(keys)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", tx.t.name, err)
		}
		return []group{{part: p, runs: []run{{0, int(rec.NumRows())}}}}, nil
	}
	keyCols := make([]arrow.Array, len(keys))
	for i, k := range keys {
		idx := rec.Schema().FieldIndices(k)
		if len(idx) == 0 {
			return nil, fmt.Errorf("table %s: record has no partition column %q (or use WritePartition)", tx.t.name, k)
		}
		keyCols[i] = rec.Column(idx[0])
	}
	groups, err := splitByPartition(keys, keyCols, int(rec.NumRows()))
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", tx.t.name, err)
	}
	return groups, nil
}

// WritePartition adds a record's rows to one partition given explicitly; partition
// columns in the record, if any, are ignored.
func (tx *Tx) WritePartition(p Partition, rec arrow.RecordBatch) error {
	if err := tx.usable(); err != nil {
		return err
	}
	p, err := p.normalize(tx.base.PartitionKeys)
	if err != nil {
		return fmt.Errorf("table %s: %w", tx.t.name, err)
	}
	sub, err := tx.conform(rec, []run{{0, int(rec.NumRows())}})
	if err != nil {
		return err
	}
	defer sub.Release()
	return tx.writeData(p, sub)
}

// conform builds a record in the table's data schema from rows runs of rec.
func (tx *Tx) conform(rec arrow.RecordBatch, runs []run) (arrow.RecordBatch, error) {
	ds := tx.fileSchema()
	keys := map[string]bool{}
	for _, k := range tx.base.PartitionKeys {
		keys[k] = true
	}
	for _, f := range rec.Schema().Fields() {
		if !keys[f.Name] && len(ds.FieldIndices(f.Name)) == 0 {
			return nil, fmt.Errorf("table %s: record column %q is not in the table schema (evolve the schema with CreateTable first)", tx.t.name, f.Name)
		}
	}
	n := 0
	for _, r := range runs {
		n += r.end - r.start
	}
	cols := make([]arrow.Array, ds.NumFields())
	var fields []int // dictionary columns
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range ds.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			if !f.Nullable {
				return nil, fmt.Errorf("table %s: record lacks NOT NULL column %q", tx.t.name, f.Name)
			}
			cols[i] = array.MakeArrayOfNull(tx.mem, f.Type, n)
			continue
		}
		src := rec.Column(idx[0])
		dict := isDictOf(src.DataType(), f.Type)
		if !dict && !sameType(src.DataType(), f.Type) {
			return nil, fmt.Errorf("table %s: column %q has type %s, the table has %s", tx.t.name, f.Name, src.DataType(), f.Type)
		}
		col, err := takeRuns(tx.mem, src, runs)
		if err != nil {
			return nil, fmt.Errorf("table %s: column %q: %w", tx.t.name, f.Name, err)
		}
		if dict {
			fields = append(fields, i)
		} else if !arrow.TypeEqual(col.DataType(), f.Type) {
			col = retype(col, f.Type)
		}
		cols[i] = col
		if !f.Nullable && col.NullN() > 0 {
			return nil, fmt.Errorf("table %s: NOT NULL column %q has %d nulls", tx.t.name, f.Name, col.NullN())
		}
	}
	if len(fields) > 0 {
		fs := ds.Fields()
		for _, i := range fields {
			fs[i].Type = cols[i].DataType()
		}
		md := ds.Metadata()
		ds = arrow.NewSchema(fs, &md)
	}
	return array.NewRecordBatch(ds, cols, int64(n)), nil
}

// isDictOf says whether a column of type src can be written as a column of type
// dst as it is: a dictionary of dst's (string or binary) values, which the Parquet
// writer takes as its dictionary page and indices without hashing every value.
func isDictOf(src, dst arrow.DataType) bool {
	dt, ok := src.(*arrow.DictionaryType)
	return ok && arrow.IsBaseBinary(dst.ID()) && arrow.TypeEqual(dt.ValueType, dst) && arrow.IsInteger(dt.IndexType.ID())
}

// retype relabels an array with an equivalent type (same layout, different child
// names or time zone spelling). It consumes a.
func retype(a arrow.Array, dt arrow.DataType) arrow.Array {
	d := a.Data()
	nd := array.NewData(dt, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
	out := array.MakeFromData(nd)
	nd.Release()
	a.Release()
	return out
}

// fileSchema is the schema of the files this transaction writes.
func (tx *Tx) fileSchema() *arrow.Schema {
	if tx.data == nil {
		tx.data = tx.base.DataSchema()
	}
	return tx.data
}

// writeData adds the rows of recs (records of the file schema, in order) to
// partition p.
func (tx *Tx) writeData(p Partition, recs ...arrow.RecordBatch) error {
	var rows int64
	for _, rec := range recs {
		rows += rec.NumRows()
	}
	if rows == 0 {
		return nil
	}
	recs = slices.DeleteFunc(slices.Clone(recs), func(r arrow.RecordBatch) bool { return r.NumRows() == 0 })
	rec := recs[0]
	key := p.Path()
	pw := tx.writers[key]
	if pw == nil {
		// A batch of old events can touch thousands of partitions: keep only the most
		// recently used files open (memory, descriptors); the others are finished.
		if len(tx.writers) >= tx.t.w.opts.MaxOpenFiles {
			var lru *partWriter
			for _, w := range tx.writers {
				if lru == nil || w.used < lru.used {
					lru = w
				}
			}
			delete(tx.writers, lru.part.Path())
			if err := tx.finish(lru); err != nil {
				tx.err = err
				return err
			}
		}
		var err error
		if pw, err = tx.newPartWriter(p, rec); err != nil {
			tx.err = err
			return err
		}
		tx.writers[key] = pw
	}
	tx.uses++
	pw.used = tx.uses
	if err := pw.write(recs, tx.t.w.opts.RowGroupRows); err != nil {
		tx.err = fmt.Errorf("cannot write %q: %w", pw.tmp, err)
		return tx.err
	}
	pw.rows += rows
	target := tx.target
	if target <= 0 {
		target = tx.t.w.opts.TargetFileBytes
	}
	if pw.fw.TotalCompressedBytes()+pw.fw.RowGroupTotalCompressedBytes() >= target {
		delete(tx.writers, key)
		if err := tx.finish(pw); err != nil {
			tx.err = err
			return err
		}
	}
	return nil
}

// partWriter is an open Parquet file of one partition.
type partWriter struct {
	part Partition
	tmp  string
	name string // final base name
	f    *os.File
	buf  *bufio.Writer
	// fw is pqarrow's writer (pqFile), or columnFileWriter for files whose first
	// record has a dictionary column.
	fw   parquetFile
	rows int64
	used int64 // Tx.uses at the last write
	// ownGroup: the open row group was written by columns (write); WriteBuffered
	// must not append to it.
	ownGroup bool
}

// parquetFile is what Tx asks of a Parquet file writer.
type parquetFile interface {
	TotalCompressedBytes() int64
	RowGroupTotalCompressedBytes() int64
	Close() error
	// newRowGroup starts a row group; writeBuffered adds a record of the file's
	// schema to the open buffered row group; writeColumn writes the next column of
	// a row group written column by column, from parts written one after the other.
	newRowGroup() error
	writeBuffered(rec arrow.RecordBatch) error
	writeColumn(parts []arrow.Array) error
}

// pqFile is pqarrow's FileWriter as a parquetFile.
type pqFile struct{ *pqarrow.FileWriter }

func (f pqFile) newRowGroup() error                        { return f.NewBufferedRowGroupChecked() }
func (f pqFile) writeBuffered(rec arrow.RecordBatch) error { return f.WriteBuffered(rec) }
func (f pqFile) writeColumn(parts []arrow.Array) error {
	if len(parts) == 1 {
		return f.WriteColumnData(parts[0])
	}
	ch := arrow.NewChunked(parts[0].DataType(), parts)
	defer ch.Release()
	return f.WriteColumnChunked(ch, 0, int64(ch.Len()))
}

// write adds the rows of recs (one schema) to the file. A record with dictionary
// columns (see isDictOf) does not have the file's schema, which WriteBuffered
// insists on: recs are written column by column, each column chunk after chunk,
// into row groups of their own (at most maxRows rows each, spanning chunks); the
// ARROW:schema stored in the file stays the table's.
func (pw *partWriter) write(recs []arrow.RecordBatch, maxRows int64) error {
	fw := pw.fw
	if !hasDict(recs[0]) {
		if pw.ownGroup {
			// The open row group was written column by column: start a new one.
			if err := fw.newRowGroup(); err != nil {
				return err
			}
			pw.ownGroup = false
		}
		for _, rec := range recs {
			if err := fw.writeBuffered(rec); err != nil {
				return err
			}
		}
		return nil
	}
	var n int64
	for _, rec := range recs {
		n += rec.NumRows()
	}
	var parts []arrow.Array
	for off := int64(0); off < n; off += maxRows {
		end := min(n, off+maxRows)
		if err := fw.newRowGroup(); err != nil {
			return err
		}
		for c := range int(recs[0].NumCols()) {
			parts = parts[:0]
			at := int64(0) // row of the file's rows where rec starts
			for _, rec := range recs {
				lo, hi := max(off, at), min(end, at+rec.NumRows())
				if lo < hi {
					col := rec.Column(c)
					if lo > at || hi < at+rec.NumRows() {
						col = array.NewSlice(col, lo-at, hi-at)
					} else {
						col.Retain()
					}
					parts = append(parts, col)
				}
				at += rec.NumRows()
			}
			err := fw.writeColumn(parts)
			for _, p := range parts {
				p.Release()
			}
			if err != nil {
				return err
			}
		}
	}
	pw.ownGroup = true
	return nil
}

func hasDict(rec arrow.RecordBatch) bool {
	for _, f := range rec.Schema().Fields() {
		if f.Type.ID() == arrow.DICTIONARY {
			return true
		}
	}
	return false
}

// bufPool recycles the files' write buffers (1 MiB each).
var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}

func getBuf(f *os.File) *bufio.Writer {
	b := bufPool.Get().(*bufio.Writer)
	b.Reset(f)
	return b
}

func putBuf(b *bufio.Writer) {
	if b != nil {
		b.Reset(nil)
		bufPool.Put(b)
	}
}

// dataPageSize is where the writers cut data pages: 64 KiB under arrow-go's 1 MiB
// default. arrow-go cuts a page once a write batch (1024 values) takes it past the
// limit, and grows its page buffer to the next power of two; at exactly 1 MiB every
// full page of plain strings (raw lines, user and item ids) overshot into a 2 MiB
// buffer — allocated, the first MiB copied, and all 2 MiB zeroed again when the
// page was done. 64 KiB of room keeps pages of lines up to ~60 bytes in a 1 MiB
// buffer (longer ones overshoot as before).
const dataPageSize = 1<<20 - 64<<10

// writerProps are the Parquet properties of a file whose first rows are first.
func (tx *Tx) writerProps(first arrow.RecordBatch) (*parquet.WriterProperties, pqarrow.ArrowWriterProperties) {
	o := tx.t.w.opts
	var opts []parquet.WriterProperty
	// Dictionaries pay off for strings, numbers with few distinct values (ratings,
	// prices) and days. Event timestamps are nearly all distinct but arrive nearly
	// sorted: delta encoding shrinks them to a few bits each, which makes DuckDB
	// scans of them about as cheap as of snappy-compressed plain values.
	for i, f := range tx.fileSchema().Fields() {
		switch {
		case f.Type.ID() == arrow.TIMESTAMP:
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false),
				parquet.WithEncodingFor(f.Name, parquet.Encodings.DeltaBinaryPacked))
		case highCardinality(first.Column(i)) && (f.Type.ID() == arrow.INT64 || f.Type.ID() == arrow.INT32):
			// Mostly distinct integers (offsets, ids) usually climb: delta encoding
			// stores each as a few bits of its difference to the previous, where plain
			// pages hand zstd 8 bytes a value to find the pattern in. Never much
			// larger than plain when they do not climb (a bit width per miniblock).
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false),
				parquet.WithEncodingFor(f.Name, parquet.Encodings.DeltaBinaryPacked))
		case arrow.IsBaseBinary(f.Type.ID()) && allNull(first.Column(i)):
			// A string column the rows leave empty (Kafka keys, event ids, sources
			// the records do not carry): arrow-go feeds a dictionary encoder through
			// a 24-byte slice header per row even when every row is null; plain
			// takes the (empty) Arrow buffers as they are.
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false))
		case highCardinality(first.Column(i)):
			// Mostly distinct values (raw lines, ids, offsets): a dictionary would be
			// dropped at the page size limit anyway, after hashing every value (one
			// allocation each in arrow-go). Plain pages take Arrow's buffers as they
			// are and zstd still finds the repeats.
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false))
		}
	}
	props := parquet.NewWriterProperties(append(opts,
		parquet.WithCompression(tx.t.w.codec),
		parquet.WithCompressionLevel(o.CompressionLevel),
		parquet.WithStats(true),
		parquet.WithDataPageSize(dataPageSize),
		parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(o.RowGroupRows),
		parquet.WithCreatedBy("tagpipe warehouse (arrow-go)"),
		parquet.WithAllocator(tx.mem),
	)...)
	return props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(tx.mem))
}

func (tx *Tx) newPartWriter(p Partition, first arrow.RecordBatch) (*partWriter, error) {
	dir := filepath.Join(tx.t.dir, filepath.FromSlash(p.Path()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create partition dir %q: %w", dir, err)
	}
	tx.seq++
	prefix := dataPrefix
	if tx.lk == nil {
		prefix = compactPrefix // written without the lock: see Table.recover
	}
	tmp := filepath.Join(dir, "."+prefix+strings.TrimPrefix(tx.fileName(tx.seq), dataPrefix)+tmpExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create data file %q: %w", tmp, err)
	}
	buf := getBuf(f)
	props, aprops := tx.writerProps(first)
	pw := &partWriter{part: p, tmp: tmp, name: tx.fileName(tx.seq), f: f, buf: buf}
	if hasDict(first) && fileWritable(tx.fileSchema()) {
		pw.fw, err = newColumnFileWriter(tx.fileSchema(), buf, props, aprops)
	} else {
		var w *pqarrow.FileWriter
		w, err = pqarrow.NewFileWriter(tx.fileSchema(), buf, props, aprops)
		pw.fw = pqFile{w}
	}
	if err != nil {
		putBuf(buf)
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("cannot start parquet file %q: %w", tmp, err)
	}
	return pw, nil
}

// finish closes and flushes a file and stages it for commit; Flush fsyncs it.
func (tx *Tx) finish(pw *partWriter) error {
	err := pw.fw.Close()
	if err == nil {
		err = pw.buf.Flush()
	}
	putBuf(pw.buf)
	pw.buf = nil
	if cerr := pw.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(pw.tmp)
		return fmt.Errorf("cannot finish data file %q: %w", pw.tmp, err)
	}
	st, err := os.Stat(pw.tmp)
	if err != nil {
		return fmt.Errorf("cannot stat data file %q: %w", pw.tmp, err)
	}
	tx.staged = append(tx.staged, stagedFile{src: pw.tmp, name: pw.name, df: DataFile{Partition: pw.part, Rows: pw.rows, Bytes: st.Size()}})
	return nil
}

// syncWorkers bounds the concurrent fsyncs of Flush and Commit: a journaling file
// system folds concurrent fsyncs into shared journal commits, so thousands of small
// files (one per event day of a backlog) cost a few commits instead of one each.
const syncWorkers = 16

// parallel runs f(i) for i in [0, n) on up to syncWorkers goroutines and returns
// the first error.
func parallel(n int, f func(i int) error) error {
	if n == 1 {
		return f(0)
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, syncWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// syncFile fsyncs a closed file.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open data file %q to sync: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot sync data file %q: %w", path, err)
	}
	return nil
}

// Flush closes every open file and fsyncs every file written, making all rows
// written so far durable (still invisible until Commit). Commit flushes by itself.
func (tx *Tx) Flush() error {
	if tx.closed {
		return ErrClosed
	}
	// In partition order, so file names follow it.
	for _, key := range slices.Sorted(maps.Keys(tx.writers)) {
		pw := tx.writers[key]
		delete(tx.writers, key)
		if err := tx.finish(pw); err != nil && tx.err == nil {
			tx.err = err
		}
	}
	if tx.err != nil {
		return tx.err
	}
	var todo []*stagedFile
	for i := range tx.staged {
		// Imported files too: their writers (DuckDB's COPY) do not fsync.
		if s := &tx.staged[i]; !s.synced {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if err := parallel(len(todo), func(i int) error { return syncFile(todo[i].src) }); err != nil {
		tx.err = err
		return err
	}
	for _, s := range todo {
		s.synced = true
	}
	return nil
}

// Abort drops the transaction: its own files are deleted, imported files are left
// where they were, the lock is released. Safe after Commit and safe twice.
func (tx *Tx) Abort() {
	if tx.closed {
		return
	}
	tx.closed = true
	for key, pw := range tx.writers {
		delete(tx.writers, key)
		pw.fw.Close()
		putBuf(pw.buf)
		pw.f.Close()
		os.Remove(pw.tmp)
	}
	for _, s := range tx.staged {
		if !s.imported {
			os.Remove(s.src)
		}
	}
	tx.staged = nil
	tx.lk.unlock()
}

// group is one partition's rows as runs of consecutive row indices.
type group struct {
	part Partition
	runs []run
}

type run struct{ start, end int }

// splitByPartition groups rows by their partition values, keeping row order within
// a partition and the order of first appearance across partitions. Rows are
// compared by raw value; values are formatted once per run of equal rows.
func splitByPartition(keys []string, cols []arrow.Array, n int) ([]group, error) {
	fmts := make([]func(int) string, len(cols))
	eqs := make([]func(i, j int) bool, len(cols))
	for i, c := range cols {
		if c.NullN() > 0 {
			return nil, fmt.Errorf("partition column %q has %d null values", keys[i], c.NullN())
		}
		f, err := partitionFormatter(c)
		if err != nil {
			return nil, fmt.Errorf("partition column %q: %w", keys[i], err)
		}
		fmts[i] = f
		eqs[i] = partitionEqual(c)
	}
	var out []group
	index := map[string]int{}
	flush := func(start, end int) error {
		p := make(Partition, len(keys))
		for i, f := range fmts {
			v := f(start)
			if v == "" {
				return fmt.Errorf("partition column %q has an empty value", keys[i])
			}
			p[i] = PartitionValue{Key: keys[i], Value: v}
		}
		key := p.Path()
		gi, ok := index[key]
		if !ok {
			gi = len(out)
			index[key] = gi
			out = append(out, group{part: p})
		}
		out[gi].runs = append(out[gi].runs, run{start, end})
		return nil
	}
	start := 0
	for r := 1; r < n; r++ {
		same := true
		for _, eq := range eqs {
			if !eq(r-1, r) {
				same = false
				break
			}
		}
		if !same {
			if err := flush(start, r); err != nil {
				return nil, err
			}
			start = r
		}
	}
	if n > 0 {
		if err := flush(start, n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// partitionEqual compares two rows of a partition column without allocating.
func partitionEqual(a arrow.Array) func(i, j int) bool {
	switch c := a.(type) {
	case *array.Dictionary:
		// Equal indices are equal values; unequal ones may be too (a dictionary
		// need not be unique): they only start a new run of the same partition.
		if idx, ok := c.Indices().(*array.Int32); ok {
			// The streaming pipelines' dt: compare the indices as they are rather
			// than through GetValueIndex's switch on the index type, per row.
			v := idx.Int32Values()
			return func(i, j int) bool { return v[i] == v[j] }
		}
		return func(i, j int) bool { return c.GetValueIndex(i) == c.GetValueIndex(j) }
	case *array.String:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	case *array.Date32:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	case *array.Int64:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	case *array.Int32:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	case *array.Int16:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	case *array.Int8:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	case *array.Boolean:
		return func(i, j int) bool { return c.Value(i) == c.Value(j) }
	}
	return func(i, j int) bool { return false }
}

// partitionFormatter renders a partition column's values as Hive directory values.
func partitionFormatter(a arrow.Array) (func(int) string, error) {
	switch c := a.(type) {
	case *array.Dictionary:
		// A dictionary of a key type's values (the streaming pipelines send dt so:
		// one string per day instead of one per row).
		f, err := partitionFormatter(c.Dictionary())
		if err != nil {
			return nil, err
		}
		return func(i int) string { return f(c.GetValueIndex(i)) }, nil
	case *array.String:
		return c.Value, nil
	case *array.Date32:
		return func(i int) string { return c.Value(i).ToTime().UTC().Format(time.DateOnly) }, nil
	case *array.Int64:
		return func(i int) string { return strconv.FormatInt(c.Value(i), 10) }, nil
	case *array.Int32:
		return func(i int) string { return strconv.FormatInt(int64(c.Value(i)), 10) }, nil
	case *array.Int16:
		return func(i int) string { return strconv.FormatInt(int64(c.Value(i)), 10) }, nil
	case *array.Int8:
		return func(i int) string { return strconv.FormatInt(int64(c.Value(i)), 10) }, nil
	case *array.Boolean:
		return func(i int) string { return strconv.FormatBool(c.Value(i)) }, nil
	}
	return nil, fmt.Errorf("type %s cannot be a partition key", a.DataType())
}

// takeRuns returns the rows of runs as one array (zero-copy for a single run).
func takeRuns(mem memory.Allocator, a arrow.Array, runs []run) (arrow.Array, error) {
	if len(runs) == 1 {
		if runs[0].start == 0 && runs[0].end == a.Len() {
			a.Retain()
			return a, nil
		}
		return array.NewSlice(a, int64(runs[0].start), int64(runs[0].end)), nil
	}
	parts := make([]arrow.Array, len(runs))
	for i, r := range runs {
		parts[i] = array.NewSlice(a, int64(r.start), int64(r.end))
	}
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	return array.Concatenate(parts, mem)
}

// Cardinality sampling: a column is high-cardinality when more than half of
// cardSample evenly spaced rows of a file's first record are distinct. Records
// shorter than cardMinRows keep dictionaries (cheap at that size, and a small first
// record says little about the rest of the file).
const (
	cardSample  = 1024
	cardMinRows = 4096
)

// highCardinality says whether a dictionary-encodable column holds mostly
// distinct values.
func highCardinality(a arrow.Array) bool {
	n := a.Len()
	if n < cardMinRows {
		return false
	}
	step := n / cardSample
	switch c := a.(type) {
	case *array.String:
		return countDistinct(c, step, c.Value) > cardSample/2
	case *array.Binary:
		return countDistinct(c, step, func(i int) string { return string(c.Value(i)) }) > cardSample/2
	case *array.Int64:
		return countDistinct(c, step, c.Value) > cardSample/2
	case *array.Int32:
		return countDistinct(c, step, c.Value) > cardSample/2
	case *array.Float64:
		return countDistinct(c, step, c.Value) > cardSample/2
	}
	return false
}

// countDistinct counts the distinct non-null values among cardSample rows step apart.
func countDistinct[T comparable](a arrow.Array, step int, value func(int) T) int {
	seen := make(map[T]struct{}, cardSample)
	for i, k := 0, 0; k < cardSample && i < a.Len(); i, k = i+step, k+1 {
		if a.IsValid(i) {
			seen[value(i)] = struct{}{}
		}
	}
	return len(seen)
}

// allNull says whether a column of at least cardMinRows rows is all nulls (shorter
// ones say little about the rest of the file).
func allNull(a arrow.Array) bool {
	return a.Len() >= cardMinRows && a.NullN() == a.Len()
}
