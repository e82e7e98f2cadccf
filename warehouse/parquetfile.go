package warehouse

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// columnFileWriter writes a Parquet file from Arrow columns the way pqarrow.FileWriter
// does — the same schema, ARROW:schema, encodings, pages and statistics, byte for
// byte (TestColumnFileWriterSameBytes) — except for dictionary columns: pqarrow
// finds the dictionary values a column chunk's indices reference, for its min/max
// statistics, with a hash kernel over every index (compute.UniqueArray: 6% of the
// streaming pipeline's CPU per record). Indices into a dictionary of known size need
// only a bitmap pass. The Arrow-to-Parquet work of every other column is pqarrow's
// (WriteArrowToColumn), given the definition and repetition levels computed here.
//
// It writes tables whose columns are flat or maps of flat values (fileWritable); Tx
// uses it for files whose first record has a dictionary column, pqarrow.FileWriter
// for the others.
type columnFileWriter struct {
	wr     *file.Writer
	schema *arrow.Schema // the file's Arrow schema
	ctx    context.Context
	rgw    file.BufferedRowGroupWriter
	col    int // the row group's next leaf column
	closed bool
	// Levels scratch, reused column after column (the column writers copy them).
	def, rep, valDef []int16
}

// fileWritable says whether columnFileWriter can write a file of schema.
func fileWritable(schema *arrow.Schema) bool {
	for _, f := range schema.Fields() {
		if m, ok := f.Type.(*arrow.MapType); ok {
			if !flatType(m.KeyType()) || !flatType(m.ItemType()) {
				return false
			}
		} else if !flatType(f.Type) {
			return false
		}
	}
	return true
}

func flatType(dt arrow.DataType) bool {
	switch dt.(type) {
	case arrow.NestedType, arrow.ExtensionType:
		return false
	}
	return true
}

func newColumnFileWriter(schema *arrow.Schema, w io.Writer, props *parquet.WriterProperties, aprops pqarrow.ArrowWriterProperties) (*columnFileWriter, error) {
	pqschema, err := pqarrow.ToParquet(schema, props, aprops)
	if err != nil {
		return nil, err
	}
	meta := make(metadata.KeyValueMetadata, 0)
	md := schema.Metadata()
	for i := range md.Len() {
		meta.Append(md.Keys()[i], md.Values()[i])
	}
	// As pqarrow stores it (WithStoreSchema), map types rebuilt from their fields.
	fields := schema.Fields()
	for i, f := range fields {
		if m, ok := f.Type.(*arrow.MapType); ok {
			fields[i].Type = arrow.MapOfFields(m.KeyField(), m.ItemField())
		}
	}
	stored := arrow.NewSchema(fields, &md)
	meta.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(stored, props.Allocator())))
	wr, err := file.NewParquetWriterWithError(w, pqschema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(meta))
	if err != nil {
		return nil, err
	}
	return &columnFileWriter{wr: wr, schema: schema, ctx: pqarrow.NewArrowWriteContext(context.Background(), &aprops)}, nil
}

// newRowGroup closes the open row group (if any) and starts a buffered one.
func (fw *columnFileWriter) newRowGroup() error {
	if fw.rgw != nil {
		if err := fw.rgw.Close(); err != nil {
			return err
		}
	}
	rgw, err := fw.wr.AppendBufferedRowGroupChecked()
	if err != nil {
		return err
	}
	fw.rgw, fw.col = rgw, 0
	return nil
}

// writeBuffered is pqarrow's WriteBuffered: rec's rows are added to the open row
// group, and to new ones past the row group length.
func (fw *columnFileWriter) writeBuffered(rec arrow.RecordBatch) error {
	maxRows := fw.wr.Properties().MaxRowGroupLength()
	cur := 0
	if fw.rgw == nil {
		if err := fw.newRowGroup(); err != nil {
			return err
		}
	} else {
		var err error
		if cur, err = fw.rgw.NumRows(); err != nil {
			return err
		}
	}
	n := rec.NumRows()
	for off, size := int64(0), min(n, maxRows-int64(cur)); ; {
		fw.col = 0
		for _, c := range rec.Columns() {
			sl := c
			if off > 0 || size < n {
				sl = array.NewSlice(c, off, off+size)
			}
			err := fw.writeColumn1(sl)
			if sl != c {
				sl.Release()
			}
			if err != nil {
				return err
			}
		}
		off += size
		if off >= n {
			break
		}
		if err := fw.newRowGroup(); err != nil {
			return err
		}
		size = min(maxRows, n-off)
	}
	fw.col = 0
	return nil
}

// writeColumn writes parts, one after the other, as the open row group's next
// column (a dictionary column keeps dictionary encoding across parts that carry the
// same dictionary).
func (fw *columnFileWriter) writeColumn(parts []arrow.Array) error {
	col := fw.col
	for _, a := range parts {
		fw.col = col // the row group's column writers take several writes
		if err := fw.writeColumn1(a); err != nil {
			return err
		}
	}
	return nil
}

// writeColumn1 writes a as the open row group's next column.
func (fw *columnFileWriter) writeColumn1(a arrow.Array) error {
	if fw.col >= fw.rgw.NumColumns() {
		return errors.New("BUG: columnFileWriter: more columns than the schema")
	}
	if m, ok := a.(*array.Map); ok {
		return fw.writeMap(m)
	}
	cw, err := fw.rgw.Column(fw.col)
	if err != nil {
		return err
	}
	fw.col++
	nullable := cw.Descr().SchemaNode().RepetitionType() == parquet.Repetitions.Optional
	var def []int16
	if nullable {
		def = fw.defLevels(a)
	}
	if d, ok := a.(*array.Dictionary); ok {
		return fw.writeDictionary(cw, d, def, nullable)
	}
	return pqarrow.WriteArrowToColumn(fw.ctx, cw, a, def, nil, nullable)
}

// defLevels are the definition levels of a flat optional column: 1 where a is valid.
func (fw *columnFileWriter) defLevels(a arrow.Array) []int16 {
	n := a.Len()
	if cap(fw.def) < n {
		fw.def = make([]int16, n)
	}
	def := fw.def[:n]
	if a.NullN() == 0 {
		for i := range def {
			def[i] = 1
		}
		return def
	}
	bits, off := a.NullBitmapBytes(), a.Data().Offset()
	if len(bits) == 0 { // all null
		clear(def)
		return def
	}
	for i := range def {
		def[i] = 0
		if bitutil.BitIsSet(bits, off+i) {
			def[i] = 1
		}
	}
	return def
}

// writeMap writes a map column (an optional group of a repeated key_value group of a
// required key and an optional value): a null map is definition level 0, an empty
// one 1, an entry 2 with its value null and 3 with it set; repetition level 1 for
// every entry of a map but its first.
func (fw *columnFileWriter) writeMap(m *array.Map) error {
	def, rep, valDef := fw.def[:0], fw.rep[:0], fw.valDef[:0]
	defer func() { fw.def, fw.rep, fw.valDef = def, rep, valDef }()
	n := m.Len()
	first, last := int64(0), int64(0)
	if n > 0 {
		first, _ = m.ValueOffsets(0)
		_, last = m.ValueOffsets(n - 1)
	}
	items := m.Items()
	for i := range n {
		s, e := m.ValueOffsets(i)
		switch {
		case m.IsNull(i) && s != e:
			return fmt.Errorf("map column: null row %d has %d entries", i, e-s)
		case m.IsNull(i):
			def, rep, valDef = append(def, 0), append(rep, 0), append(valDef, 0)
		case s == e:
			def, rep, valDef = append(def, 1), append(rep, 0), append(valDef, 1)
		}
		for j := s; j < e; j++ {
			r := int16(1)
			if j == s {
				r = 0
			}
			v := int16(2)
			if items.IsValid(int(j)) {
				v = 3
			}
			def, rep, valDef = append(def, 2), append(rep, r), append(valDef, v)
		}
	}
	mt := m.DataType().(*arrow.MapType)
	for _, leaf := range []struct {
		values   arrow.Array
		def      []int16
		nullable bool
	}{{m.Keys(), def, mt.KeyField().Nullable}, {items, valDef, mt.ItemField().Nullable}} {
		cw, err := fw.rgw.Column(fw.col)
		if err != nil {
			return err
		}
		fw.col++
		vals := array.NewSlice(leaf.values, first, last)
		err = pqarrow.WriteArrowToColumn(fw.ctx, cw, vals, leaf.def, rep, leaf.nullable)
		vals.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// dictEncoder is the part of arrow-go's dictionary encoder (parquet/internal/encoding,
// not importable) that pqarrow's writeDictionaryArrow uses.
type dictEncoder interface {
	PutDictionary(arrow.Array) error
	PreservedDictionary() arrow.Array
	NumEntries() int
}

// writeDictionary is pqarrow's writeDictionaryArrow with the referenced dictionary
// values found by a bitmap over the indices.
func (fw *columnFileWriter) writeDictionary(cw file.ColumnChunkWriter, d *array.Dictionary, def []int16, nullable bool) error {
	enc, ok := cw.CurrentEncoder().(dictEncoder)
	dt := d.DataType().(*arrow.DictionaryType)
	if !ok || cw.CurrentEncoder().Encoding() != parquet.Encodings.PlainDict ||
		!(arrow.IsPrimitive(dt.ValueType.ID()) || arrow.IsBaseBinary(dt.ValueType.ID())) {
		// Not (or no longer) dictionary encoding: pqarrow writes the values.
		return pqarrow.WriteArrowToColumn(fw.ctx, cw, d, def, nil, nullable)
	}
	dict, indices := d.Dictionary(), d.Indices()
	preserved := enc.PreservedDictionary()
	switch {
	case preserved == nil:
		if err := enc.PutDictionary(dict); err != nil {
			return err
		}
		if enc.NumEntries() != dict.Len() {
			// Duplicate values in the dictionary: pqarrow falls back to plain.
			cw.FallbackToPlain()
			return pqarrow.WriteArrowToColumn(fw.ctx, cw, d, def, nil, nullable)
		}
	case !array.Equal(dict, preserved):
		cw.FallbackToPlain()
		return pqarrow.WriteArrowToColumn(fw.ctx, cw, d, def, nil, nullable)
	}
	if stats := cw.PageStatistics(); stats != nil {
		ref, err := referencedValues(dict, indices, cw.Properties().Allocator())
		if err != nil {
			return err
		}
		nonNull := indices.Len() - indices.NullN()
		stats.IncNulls(max(int64(len(def)-nonNull), 0))
		stats.IncNumValues(int64(nonNull))
		err = stats.UpdateFromArrow(ref, false)
		ref.Release()
		if err != nil {
			return err
		}
	}
	return cw.WriteDictIndices(indices, def, nil)
}

// referencedValues returns the values of dict that indices (valid ones) point at, in
// dictionary order (pqarrow's statistics take their min and max).
func referencedValues(dict, indices arrow.Array, mem memory.Allocator) (arrow.Array, error) {
	seen := make([]bool, dict.Len())
	count := 0
	mark := func(v int64) error {
		if v < 0 || v >= int64(len(seen)) {
			return fmt.Errorf("dictionary index %d out of range [0, %d)", v, len(seen))
		}
		if !seen[v] {
			seen[v] = true
			count++
		}
		return nil
	}
	valid := func(i int) bool { return indices.NullN() == 0 || indices.IsValid(i) }
	switch ix := indices.(type) {
	case *array.Int32:
		for i, v := range ix.Int32Values() {
			if valid(i) {
				if err := mark(int64(v)); err != nil {
					return nil, err
				}
			}
		}
	default:
		d := array.NewDictionaryArray(&arrow.DictionaryType{IndexType: indices.DataType(), ValueType: dict.DataType()}, indices, dict)
		defer d.Release()
		for i := range indices.Len() {
			if valid(i) {
				if err := mark(int64(d.GetValueIndex(i))); err != nil {
					return nil, err
				}
			}
		}
	}
	if count == len(seen) {
		dict.Retain()
		return dict, nil
	}
	take := make([]int32, 0, count)
	for i, s := range seen {
		if s {
			take = append(take, int32(i))
		}
	}
	idx := array.NewData(arrow.PrimitiveTypes.Int32, len(take), []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(take))}, nil, 0, 0)
	defer idx.Release()
	ia := array.MakeFromData(idx)
	defer ia.Release()
	return compute.TakeArrayOpts(compute.WithAllocator(context.Background(), mem), dict, ia, compute.TakeOptions{BoundsCheck: true})
}

// Close finishes the file.
func (fw *columnFileWriter) Close() error {
	if fw.closed {
		return nil
	}
	fw.closed = true
	if fw.rgw != nil {
		if err := fw.rgw.Close(); err != nil {
			return err
		}
	}
	return fw.wr.Close()
}

// TotalCompressedBytes is the file's compressed bytes so far, the open row group's
// included.
func (fw *columnFileWriter) TotalCompressedBytes() int64 { return fw.wr.TotalCompressedBytes() }

// RowGroupTotalCompressedBytes is the open row group's compressed bytes so far.
func (fw *columnFileWriter) RowGroupTotalCompressedBytes() int64 {
	if fw.rgw == nil {
		return 0
	}
	return fw.rgw.TotalCompressedBytes()
}
