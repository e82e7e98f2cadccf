package pgwire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// pgType is how one DuckDB type travels: its PostgreSQL type OID, size and name.
type pgType struct {
	oid  uint32
	size int16
	name string
}

var scalarTypes = map[string]pgType{
	"BOOLEAN":      {pgtype.BoolOID, 1, "boolean"},
	"TINYINT":      {pgtype.Int2OID, 2, "smallint"},
	"UTINYINT":     {pgtype.Int2OID, 2, "smallint"},
	"SMALLINT":     {pgtype.Int2OID, 2, "smallint"},
	"USMALLINT":    {pgtype.Int4OID, 4, "integer"},
	"INTEGER":      {pgtype.Int4OID, 4, "integer"},
	"UINTEGER":     {pgtype.Int8OID, 8, "bigint"},
	"BIGINT":       {pgtype.Int8OID, 8, "bigint"},
	"UBIGINT":      {pgtype.NumericOID, -1, "numeric"},
	"HUGEINT":      {pgtype.NumericOID, -1, "numeric"},
	"UHUGEINT":     {pgtype.NumericOID, -1, "numeric"},
	"DECIMAL":      {pgtype.NumericOID, -1, "numeric"},
	"FLOAT":        {pgtype.Float4OID, 4, "real"},
	"DOUBLE":       {pgtype.Float8OID, 8, "double precision"},
	"VARCHAR":      {pgtype.TextOID, -1, "text"},
	"ENUM":         {pgtype.TextOID, -1, "text"},
	"BLOB":         {pgtype.ByteaOID, -1, "bytea"},
	"DATE":         {pgtype.DateOID, 4, "date"},
	"TIME":         {pgtype.TimeOID, 8, "time without time zone"},
	"TIMESTAMP":    {pgtype.TimestampOID, 8, "timestamp without time zone"},
	"TIMESTAMP_S":  {pgtype.TimestampOID, 8, "timestamp without time zone"},
	"TIMESTAMP_MS": {pgtype.TimestampOID, 8, "timestamp without time zone"},
	"TIMESTAMP_NS": {pgtype.TimestampOID, 8, "timestamp without time zone"},
	"TIMESTAMPTZ":  {pgtype.TimestamptzOID, 8, "timestamp with time zone"},
	"INTERVAL":     {pgtype.IntervalOID, 16, "interval"},
	"UUID":         {pgtype.UUIDOID, 16, "uuid"},
	"JSON":         {pgtype.JSONOID, -1, "json"},
}

var arrayTypes = map[string]pgType{
	"VARCHAR[]":  {pgtype.TextArrayOID, -1, "text[]"},
	"BIGINT[]":   {pgtype.Int8ArrayOID, -1, "bigint[]"},
	"INTEGER[]":  {pgtype.Int4ArrayOID, -1, "integer[]"},
	"SMALLINT[]": {pgtype.Int2ArrayOID, -1, "smallint[]"},
	"DOUBLE[]":   {pgtype.Float8ArrayOID, -1, "double precision[]"},
	"BOOLEAN[]":  {pgtype.BoolArrayOID, -1, "boolean[]"},
}

var textType = pgType{pgtype.TextOID, -1, "text"}

// typeOf maps a DuckDB column type; types PostgreSQL lacks (STRUCT, MAP, nested lists)
// travel as text in DuckDB's own notation.
func typeOf(duck string) pgType {
	if t, ok := arrayTypes[duck]; ok {
		return t
	}
	if t, ok := scalarTypes[tsql.BaseType(duck)]; ok && !strings.HasSuffix(duck, "]") {
		if t.oid == pgtype.NumericOID && strings.HasPrefix(duck, "DECIMAL(") {
			t.name = "numeric" + strings.TrimPrefix(duck, "DECIMAL")
		}
		return t
	}
	return textType
}

func oidOf(duck string) uint32 { return typeOf(duck).oid }

func formatFor(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return pgproto3.TextFormat
	case 1:
		return formats[0]
	}
	if i < len(formats) {
		return formats[i]
	}
	return pgproto3.TextFormat
}

func (c *conn) rowDescription(cols []tsql.Column, formats []int16) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, col := range cols {
		t := typeOf(col.Type)
		fields[i] = pgproto3.FieldDescription{Name: []byte(col.Name), DataTypeOID: t.oid, DataTypeSize: t.size,
			TypeModifier: -1, Format: formatFor(formats, i)}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// encoder appends one non-NULL value in its wire format.
type encoder func(v any, buf []byte) ([]byte, error)

func (c *conn) encoders(cols []tsql.Column, formats []int16) []encoder {
	out := make([]encoder, len(cols))
	for i, col := range cols {
		t, duck, format := typeOf(col.Type), col.Type, formatFor(formats, i)
		out[i] = func(v any, buf []byte) ([]byte, error) {
			if format == pgtype.TextFormatCode {
				switch x := v.(type) {
				case float64:
					if t.oid == pgtype.Float8OID || t.oid == pgtype.Float4OID {
						return appendPGFloat(buf, x, 64), nil
					}
				case float32:
					if t.oid == pgtype.Float4OID || t.oid == pgtype.Float8OID {
						return appendPGFloat(buf, float64(x), 32), nil
					}
				}
			}
			pv := toPG(v, duck, t.oid)
			if t.oid == pgtype.TextOID {
				if s, ok := pv.(string); ok {
					return append(buf, s...), nil // text is the same in both formats
				}
			}
			b, err := c.types.Encode(t.oid, format, pv, buf)
			if err != nil {
				return buf, err
			}
			if b == nil {
				return buf, fmt.Errorf("value %v encodes as NULL", v)
			}
			return b, nil
		}
	}
	return out
}

// appendPGFloat appends f as PostgreSQL's float8out (bits 64) or float4out (32) print
// it since PostgreSQL 12: the shortest text that reads back, in fixed notation for
// decimal exponents from -4 up to 15 (float4: 6) and exponent notation otherwise, with
// at least two exponent digits ("1e+15", "5.9e-33"); NaN, Infinity and -Infinity.
// pgtype's text encoder always writes fixed notation: 1e300 as 301 digits.
func appendPGFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	case f == 0:
		return strconv.AppendFloat(buf, f, 'f', -1, bits) // "0", "-0"
	}
	limit := 15
	if bits == 32 {
		limit = 6
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, bits) // d.ddde±XX
	exp, _ := strconv.Atoi(string(e[bytes.IndexByte(e, 'e')+1:]))
	if exp >= -4 && exp < limit {
		return strconv.AppendFloat(buf, f, 'f', -1, bits)
	}
	return append(buf, e...)
}

// toPG converts a DuckDB value into one pgtype encodes for oid.
func toPG(v any, duck string, oid uint32) any {
	switch oid {
	case pgtype.TextOID:
		if s, ok := v.(string); ok {
			return s
		}
		return tsql.Format(v, duck)
	case pgtype.Int2OID:
		switch x := v.(type) {
		case int8:
			return int16(x)
		case uint8:
			return int16(x)
		}
	case pgtype.Int4OID:
		if x, ok := v.(uint16); ok {
			return int32(x)
		}
	case pgtype.Int8OID:
		if x, ok := v.(uint32); ok {
			return int64(x)
		}
	case pgtype.NumericOID:
		switch x := v.(type) {
		case duckdb.Decimal:
			return pgtype.Numeric{Int: x.Value, Exp: -int32(x.Scale), Valid: true}
		case *big.Int:
			return pgtype.Numeric{Int: x, Valid: true}
		case uint64:
			return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}
		}
	case pgtype.TimeOID:
		if t, ok := v.(time.Time); ok {
			us := int64(t.Hour())*3600e6 + int64(t.Minute())*60e6 + int64(t.Second())*1e6 + int64(t.Nanosecond())/1e3
			return pgtype.Time{Microseconds: us, Valid: true}
		}
	case pgtype.IntervalOID:
		if iv, ok := v.(duckdb.Interval); ok {
			return pgtype.Interval{Months: iv.Months, Days: iv.Days, Microseconds: iv.Micros, Valid: true}
		}
	case pgtype.UUIDOID:
		if b, ok := v.([]byte); ok && len(b) == 16 {
			var u [16]byte
			copy(u[:], b)
			return u
		}
	case pgtype.JSONOID:
		if s, ok := v.(string); ok {
			return s
		}
	case pgtype.TextArrayOID, pgtype.Int8ArrayOID, pgtype.Int4ArrayOID, pgtype.Int2ArrayOID, pgtype.Float8ArrayOID, pgtype.BoolArrayOID:
		if l, ok := v.([]any); ok {
			return listOf(l, oid)
		}
	}
	return v
}

func listOf(l []any, oid uint32) any {
	switch oid {
	case pgtype.TextArrayOID:
		return typedList[string](l)
	case pgtype.Int8ArrayOID:
		return typedList[int64](l)
	case pgtype.Int4ArrayOID:
		return typedList[int32](l)
	case pgtype.Int2ArrayOID:
		return typedList[int16](l)
	case pgtype.Float8ArrayOID:
		return typedList[float64](l)
	}
	return typedList[bool](l)
}

func typedList[T any](l []any) []*T {
	out := make([]*T, len(l))
	for i, e := range l {
		if x, ok := e.(T); ok {
			out[i] = &x
		}
	}
	return out
}

// decodeParam turns a Bind parameter into the Go value DuckDB binds.
func (c *conn) decodeParam(oid uint32, format int16, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	if format == pgproto3.TextFormat {
		s := string(raw)
		switch oid {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		case pgtype.Float4OID, pgtype.Float8OID:
			return strconv.ParseFloat(strings.TrimSpace(s), 64)
		case pgtype.BoolOID:
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "t", "true", "1", "on", "yes", "y":
				return true, nil
			case "f", "false", "0", "off", "no", "n":
				return false, nil
			}
			return nil, fmt.Errorf("invalid boolean %q", s)
		case pgtype.ByteaOID:
			if strings.HasPrefix(s, `\x`) {
				return hex.DecodeString(s[2:])
			}
			return raw, nil
		}
		return s, nil // DuckDB casts text to the parameter's type
	}
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		var x int64
		err := c.types.Scan(oid, format, raw, &x)
		return x, err
	case pgtype.Float4OID, pgtype.Float8OID:
		var x float64
		err := c.types.Scan(oid, format, raw, &x)
		return x, err
	case pgtype.BoolOID:
		var x bool
		err := c.types.Scan(oid, format, raw, &x)
		return x, err
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID, 705 /* unknown */ :
		return string(raw), nil
	case pgtype.ByteaOID:
		return append([]byte(nil), raw...), nil
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		var x time.Time
		err := c.types.Scan(oid, format, raw, &x)
		return x, err
	case pgtype.NumericOID:
		var n pgtype.Numeric
		if err := c.types.Scan(oid, format, raw, &n); err != nil {
			return nil, err
		}
		b, err := n.MarshalJSON()
		return string(b), err
	case pgtype.UUIDOID:
		var u [16]byte
		err := c.types.Scan(oid, format, raw, &u)
		return tsql.FormatUUID(u[:]), err
	}
	return nil, fmt.Errorf("binary parameters of type OID %d are not supported; send them as text", oid)
}
