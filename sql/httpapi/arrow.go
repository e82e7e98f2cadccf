package httpapi

import (
	"bufio"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// arrowBatchRows is the number of rows per record batch.
const arrowBatchRows = 8192

// ArrowType maps a DuckDB column type to the Arrow type the stream carries, following
// DuckDB's own Arrow export (UUID and types Arrow lacks travel as their text).
func ArrowType(typ string) arrow.DataType {
	if strings.HasSuffix(typ, "[]") {
		return arrow.ListOf(ArrowType(strings.TrimSuffix(typ, "[]")))
	}
	switch tsql.BaseType(typ) {
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "TINYINT":
		return arrow.PrimitiveTypes.Int8
	case "SMALLINT":
		return arrow.PrimitiveTypes.Int16
	case "INTEGER":
		return arrow.PrimitiveTypes.Int32
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64
	case "UTINYINT":
		return arrow.PrimitiveTypes.Uint8
	case "USMALLINT":
		return arrow.PrimitiveTypes.Uint16
	case "UINTEGER":
		return arrow.PrimitiveTypes.Uint32
	case "UBIGINT":
		return arrow.PrimitiveTypes.Uint64
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "BLOB":
		return arrow.BinaryTypes.Binary
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "TIME":
		return arrow.FixedWidthTypes.Time64us
	case "TIMESTAMP":
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case "TIMESTAMP_S":
		return &arrow.TimestampType{Unit: arrow.Second}
	case "TIMESTAMP_MS":
		return &arrow.TimestampType{Unit: arrow.Millisecond}
	case "TIMESTAMP_NS":
		return &arrow.TimestampType{Unit: arrow.Nanosecond}
	case "TIMESTAMPTZ":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "DECIMAL":
		var p, s int32
		if _, err := fmt.Sscanf(typ, "DECIMAL(%d,%d)", &p, &s); err == nil {
			return &arrow.Decimal128Type{Precision: p, Scale: s}
		}
	case "HUGEINT":
		return &arrow.Decimal128Type{Precision: 38, Scale: 0}
	case "INTERVAL":
		return arrow.FixedWidthTypes.MonthDayNanoInterval
	}
	return arrow.BinaryTypes.String
}

// ArrowSchema is the stream's schema; each field's metadata keeps the DuckDB type.
func ArrowSchema(cols []tsql.Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: ArrowType(c.Type), Nullable: true,
			Metadata: arrow.NewMetadata([]string{"duckdb_type"}, []string{c.Type})}
	}
	return arrow.NewSchema(fields, nil)
}

type arrowOut struct {
	cols []tsql.Column
	rb   *array.RecordBuilder
	iw   *ipc.Writer
	n    int
}

func (a *arrowOut) begin(w http.ResponseWriter, bw *bufio.Writer, cols []tsql.Column) error {
	w.Header().Set("Content-Type", ContentArrow)
	schema := ArrowSchema(cols)
	a.cols = cols
	a.rb = array.NewRecordBuilder(memory.DefaultAllocator, schema)
	a.iw = ipc.NewWriter(bw, ipc.WithSchema(schema))
	return nil
}

func (a *arrowOut) row(vals []any) error {
	for i, v := range vals {
		if err := appendValue(a.rb.Field(i), v, a.cols[i].Type); err != nil {
			return fmt.Errorf("column %q: %w", a.cols[i].Name, err)
		}
	}
	a.n++
	if a.n == arrowBatchRows {
		return a.flush()
	}
	return nil
}

func (a *arrowOut) flush() error {
	rec := a.rb.NewRecordBatch()
	defer rec.Release()
	a.n = 0
	return a.iw.Write(rec)
}

func (a *arrowOut) end(int64, bool) error {
	defer a.rb.Release()
	if a.n > 0 {
		if err := a.flush(); err != nil {
			return err
		}
	}
	return a.iw.Close()
}

func (a *arrowOut) fail(ErrorBody) error {
	// The error travels in the X-Tagpipe-Error trailer; the stream ends without its
	// end-of-stream marker so no reader mistakes it for a whole result.
	a.rb.Release()
	return nil
}

// appendValue appends one DuckDB value to a builder of ArrowType(typ).
func appendValue(b array.Builder, v any, typ string) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch bb := b.(type) {
	case *array.BooleanBuilder:
		bb.Append(v.(bool))
	case *array.Int8Builder:
		bb.Append(v.(int8))
	case *array.Int16Builder:
		bb.Append(v.(int16))
	case *array.Int32Builder:
		bb.Append(v.(int32))
	case *array.Int64Builder:
		bb.Append(v.(int64))
	case *array.Uint8Builder:
		bb.Append(v.(uint8))
	case *array.Uint16Builder:
		bb.Append(v.(uint16))
	case *array.Uint32Builder:
		bb.Append(v.(uint32))
	case *array.Uint64Builder:
		bb.Append(v.(uint64))
	case *array.Float32Builder:
		bb.Append(v.(float32))
	case *array.Float64Builder:
		bb.Append(v.(float64))
	case *array.BinaryBuilder:
		if s, ok := v.([]byte); ok {
			bb.Append(s)
		} else {
			bb.AppendString(tsql.Format(v, typ))
		}
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			bb.Append(s)
		} else {
			bb.Append(tsql.Format(v, typ))
		}
	case *array.Date32Builder:
		bb.Append(arrow.Date32FromTime(v.(time.Time)))
	case *array.Time64Builder:
		t := v.(time.Time)
		bb.Append(arrow.Time64((int64(t.Hour())*3600+int64(t.Minute())*60+int64(t.Second()))*1e6 + int64(t.Nanosecond()/1e3)))
	case *array.TimestampBuilder:
		ts, err := arrow.TimestampFromTime(v.(time.Time), bb.Type().(*arrow.TimestampType).Unit)
		if err != nil {
			return err
		}
		bb.Append(ts)
	case *array.Decimal128Builder:
		var n *big.Int
		switch x := v.(type) {
		case duckdb.Decimal:
			n = x.Value
		case *big.Int:
			n = x
		default:
			return fmt.Errorf("decimal column holds %T", v)
		}
		bb.Append(decimal128.FromBigInt(n))
	case *array.MonthDayNanoIntervalBuilder:
		iv := v.(duckdb.Interval)
		bb.Append(arrow.MonthDayNanoInterval{Months: iv.Months, Days: iv.Days, Nanoseconds: iv.Micros * 1000})
	case *array.ListBuilder:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("list column holds %T", v)
		}
		bb.Append(true)
		elem := strings.TrimSuffix(typ, "[]")
		for _, e := range list {
			if err := appendValue(bb.ValueBuilder(), e, elem); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("no Arrow builder for %T (%s)", b, strconv.Quote(typ))
	}
	return nil
}
