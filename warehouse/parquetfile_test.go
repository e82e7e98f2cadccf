package warehouse

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestColumnFileWriterSameBytes: columnFileWriter writes the very bytes pqarrow's
// FileWriter writes for the same calls (dictionary records in row groups of their
// own, split at the row group length; plain records buffered after them): nullable
// and required dictionary columns referencing all or part of their dictionary, a
// dictionary with duplicate values (plain fallback), a column that changes
// dictionary within a row group, nulls, maps with null, empty and null-valued
// entries, timestamps, floats, booleans; with and without statistics.
func TestColumnFileWriterSameBytes(t *testing.T) {
	tsType := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	strMap := arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "action", Type: arrow.BinaryTypes.String},
		{Name: "category", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "user", Type: arrow.BinaryTypes.String},
		{Name: "item", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "part", Type: arrow.PrimitiveTypes.Int32},
		{Name: "off", Type: arrow.PrimitiveTypes.Int64},
		{Name: "at", Type: tsType},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "props", Type: strMap, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
	}, nil)
	mem := memory.DefaultAllocator
	dictOf := func(vals []string, idx []int32, nulls []bool) arrow.Array {
		db := array.NewStringBuilder(mem)
		db.AppendValues(vals, nil)
		d := db.NewArray()
		defer d.Release()
		ib := array.NewInt32Builder(mem)
		for i, v := range idx {
			if nulls != nil && nulls[i] {
				ib.AppendNull()
			} else {
				ib.Append(v)
			}
		}
		ia := ib.NewArray()
		defer ia.Release()
		return array.NewDictionaryArray(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, ia, d)
	}
	// record builds n rows; dict chooses dictionary columns (else plain strings);
	// variant changes the category dictionary's values.
	record := func(n, seed int, dict bool, variant int) arrow.RecordBatch {
		actions := []string{"pv", "buy", "cart", "zzz"}
		cats := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
		switch variant {
		case 1:
			cats = []string{"c0", "c1", "c1", "c3"} // duplicates: plain fallback
		case 2:
			cats = []string{"z9", "a1", "m5", "q2", "b7", "x0", "k3", "e8"}
		}
		var aIdx, cIdx []int32
		var cNull, itemNull, valNull []bool
		users, items := make([]string, n), make([]string, n)
		parts, offs, ats := make([]int32, n), make([]int64, n), make([]arrow.Timestamp, n)
		vals, oks := make([]float64, n), make([]bool, n)
		mb := array.NewMapBuilder(mem, arrow.BinaryTypes.String, arrow.BinaryTypes.String, false)
		defer mb.Release()
		kb, vb := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
		for i := range n {
			k := i + seed
			aIdx = append(aIdx, int32(k%3)) // "zzz" never referenced: not in the statistics
			cIdx = append(cIdx, int32((k*7)%len(cats)))
			cNull = append(cNull, k%5 == 0)
			users[i], items[i] = fmt.Sprintf("u%d", k%97), fmt.Sprintf("i%d", k)
			itemNull = append(itemNull, k%11 == 0)
			parts[i], offs[i], ats[i] = int32(k%3), int64(k), arrow.Timestamp(1_700_000_000_000_000+int64(k)*1000)
			vals[i], oks[i] = float64(k%10)/2, k%4 != 0
			valNull = append(valNull, k%3 == 0)
			switch k % 6 {
			case 0:
				mb.AppendNull()
			case 1:
				mb.Append(true) // empty
			default:
				mb.Append(true)
				for j := range k % 3 {
					kb.Append(fmt.Sprintf("k%d", j))
					if (k+j)%4 == 0 {
						vb.AppendNull()
					} else {
						vb.Append(fmt.Sprintf("v%d", k*j))
					}
				}
			}
		}
		valid := func(nulls []bool) []bool {
			v := make([]bool, len(nulls))
			for i, x := range nulls {
				v[i] = !x
			}
			return v
		}
		var cols []arrow.Array
		var fields []arrow.Field
		add := func(f arrow.Field, a arrow.Array) {
			f.Type = a.DataType()
			fields = append(fields, f)
			cols = append(cols, a)
		}
		if dict {
			add(schema.Field(0), dictOf(actions, aIdx, nil))
			add(schema.Field(1), dictOf(cats, cIdx, cNull))
		} else {
			sb := array.NewStringBuilder(mem)
			for _, i := range aIdx {
				sb.Append(actions[i])
			}
			add(schema.Field(0), sb.NewArray())
			for i, c := range cIdx {
				if cNull[i] {
					sb.AppendNull()
				} else {
					sb.Append(cats[c])
				}
			}
			add(schema.Field(1), sb.NewArray())
			sb.Release()
		}
		sb := array.NewStringBuilder(mem)
		sb.AppendValues(users, nil)
		add(schema.Field(2), sb.NewArray())
		sb.AppendValues(items, valid(itemNull))
		add(schema.Field(3), sb.NewArray())
		sb.Release()
		ib := array.NewInt32Builder(mem)
		ib.AppendValues(parts, nil)
		add(schema.Field(4), ib.NewArray())
		ib.Release()
		lb := array.NewInt64Builder(mem)
		lb.AppendValues(offs, nil)
		add(schema.Field(5), lb.NewArray())
		lb.Release()
		tb := array.NewTimestampBuilder(mem, tsType)
		tb.AppendValues(ats, nil)
		add(schema.Field(6), tb.NewArray())
		tb.Release()
		fb := array.NewFloat64Builder(mem)
		fb.AppendValues(vals, valid(valNull))
		add(schema.Field(7), fb.NewArray())
		fb.Release()
		add(schema.Field(8), mb.NewArray())
		bb := array.NewBooleanBuilder(mem)
		bb.AppendValues(oks, nil)
		add(schema.Field(9), bb.NewArray())
		bb.Release()
		rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
		for _, c := range cols {
			c.Release()
		}
		return rec
	}
	for _, stats := range []bool{true, false} {
		props := parquet.NewWriterProperties(
			parquet.WithDictionaryFor("off", false), parquet.WithEncodingFor("off", parquet.Encodings.DeltaBinaryPacked),
			parquet.WithDictionaryFor("at", false), parquet.WithEncodingFor("at", parquet.Encodings.DeltaBinaryPacked),
			parquet.WithDictionaryFor("user", false),
			parquet.WithCompression(compress.Codecs.Zstd), parquet.WithCompressionLevel(1),
			parquet.WithStats(stats), parquet.WithDictionaryDefault(true), parquet.WithMaxRowGroupLength(700),
			parquet.WithCreatedBy("test"), parquet.WithAllocator(mem))
		aprops := pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem))
		write := func(columns bool) []byte {
			var out bytes.Buffer
			buf := bufio.NewWriter(&out)
			pw := &partWriter{}
			var err error
			if columns {
				pw.fw, err = newColumnFileWriter(schema, buf, props, aprops)
			} else {
				var w *pqarrow.FileWriter
				w, err = pqarrow.NewFileWriter(schema, buf, props, aprops)
				pw.fw = pqFile{w}
			}
			if err != nil {
				t.Fatal(err)
			}
			// Each entry is one write: records of one schema written as chunks of one
			// batch (row groups span them; a dictionary shared by the chunks keeps
			// dictionary encoding, one that changes falls back to plain).
			type rec struct {
				n, seed int
				dict    bool
				variant int
			}
			for i, w := range [][]rec{
				{{500, 0, true, 0}}, {{1500, 500, true, 0}}, {{300, 7, true, 1}}, {{200, 3, true, 2}},
				{{50, 1, false, 0}}, {{900, 11, false, 0}}, {{10, 2, true, 0}},
				{{400, 5, true, 0}, {1, 9, true, 0}, {650, 13, true, 0}, {100, 2, true, 0}},
				{{300, 1, true, 0}, {200, 4, true, 2}, {100, 6, true, 0}},
				{{20, 1, false, 0}, {800, 3, false, 0}},
			} {
				var recs []arrow.RecordBatch
				for _, r := range w {
					recs = append(recs, record(r.n, r.seed, r.dict, r.variant))
				}
				if err := pw.write(recs, 700); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				for _, r := range recs {
					r.Release()
				}
			}
			if err := pw.fw.Close(); err != nil {
				t.Fatal(err)
			}
			buf.Flush()
			return out.Bytes()
		}
		want, got := write(false), write(true)
		if !bytes.Equal(got, want) {
			n := 0
			for n < min(len(got), len(want)) && got[n] == want[n] {
				n++
			}
			t.Fatalf("stats %v: columnFileWriter wrote %d bytes, pqarrow %d; first difference at byte %d", stats, len(got), len(want), n)
		}
	}
}
