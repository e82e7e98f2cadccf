package sql

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Format renders one value the way DuckDB's CLI shows it (typ is the column type, which
// tells a DATE from a TIMESTAMP and a UUID from a BLOB). NULL is "NULL".
func Format(v any, typ string) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return fmt.Sprint(x)
	case float32:
		return FormatFloat(float64(x), 32)
	case float64:
		return FormatFloat(x, 64)
	case *big.Int:
		return x.String()
	case duckdb.Decimal:
		return FormatDecimal(x)
	case time.Time:
		return FormatTime(x, typ)
	case duckdb.Interval:
		return FormatInterval(x)
	case []byte:
		if BaseType(typ) == "UUID" && len(x) == 16 {
			return FormatUUID(x)
		}
		return formatBlob(x)
	case duckdb.UUID:
		return FormatUUID(x[:])
	case []any:
		elem := strings.TrimSuffix(typ, "[]")
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Format(e, elem)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortStructKeys(keys, typ)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = "'" + k + "': " + formatNested(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case duckdb.Map:
		parts := make([]string, 0, len(x))
		for k, val := range x {
			parts = append(parts, Format(k, "")+"="+Format(val, ""))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	case duckdb.Union:
		return Format(x.Value, "")
	}
	return fmt.Sprint(v)
}

func formatNested(v any) string { return Format(v, "") }

// sortStructKeys orders struct fields as the type declares them, else by name.
func sortStructKeys(keys []string, typ string) {
	at := func(k string) int {
		if i := strings.Index(typ, k+" "); i >= 0 {
			return i
		}
		return math.MaxInt
	}
	sort.SliceStable(keys, func(i, j int) bool {
		ai, aj := at(keys[i]), at(keys[j])
		if ai != aj {
			return ai < aj
		}
		return keys[i] < keys[j]
	})
}

// FormatFloat is the shortest text that reads back to f, in decimal notation for ordinary
// magnitudes ("3.5", "123456789.0") and exponent notation otherwise ("1e+20").
func FormatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	a := math.Abs(f)
	if a != 0 && (a < 1e-5 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, bits)
	}
	s := strconv.FormatFloat(f, 'f', -1, bits)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// FormatDecimal keeps the declared scale: DECIMAL(5,2) 1.5 is "1.50".
func FormatDecimal(d duckdb.Decimal) string {
	if d.Value == nil {
		return "NULL"
	}
	neg := d.Value.Sign() < 0
	digits := new(big.Int).Abs(d.Value).String()
	scale := int(d.Scale)
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// FormatTime renders DATE, TIME and TIMESTAMP values as DuckDB does.
func FormatTime(t time.Time, typ string) string {
	switch BaseType(typ) {
	case "DATE":
		return t.Format("2006-01-02")
	case "TIME":
		return t.Format("15:04:05.999999")
	case "TIMETZ":
		return t.Format("15:04:05.999999-07")
	case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return t.Format("2006-01-02 15:04:05.999999-07")
	case "TIMESTAMP_NS":
		return t.Format("2006-01-02 15:04:05.999999999")
	}
	return t.Format("2006-01-02 15:04:05.999999")
}

// FormatInterval renders "1 year 2 months 3 days 04:05:06" (parts that are zero left out).
func FormatInterval(iv duckdb.Interval) string {
	var parts []string
	plural := func(n int64, unit string) {
		if n == 0 {
			return
		}
		if n == 1 || n == -1 {
			parts = append(parts, fmt.Sprintf("%d %s", n, unit))
		} else {
			parts = append(parts, fmt.Sprintf("%d %ss", n, unit))
		}
	}
	plural(int64(iv.Months/12), "year")
	plural(int64(iv.Months%12), "month")
	plural(int64(iv.Days), "day")
	if iv.Micros != 0 || len(parts) == 0 {
		us := iv.Micros
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		s := fmt.Sprintf("%s%02d:%02d:%02d", sign, us/3600e6, us/60e6%60, us/1e6%60)
		if frac := us % 1e6; frac != 0 {
			s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// FormatUUID is the 8-4-4-4-12 hex form.
func FormatUUID(b []byte) string {
	const hexdig = "0123456789abcdef"
	var sb strings.Builder
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			sb.WriteByte('-')
		}
		sb.WriteByte(hexdig[c>>4])
		sb.WriteByte(hexdig[c&15])
	}
	return sb.String()
}

func formatBlob(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 32 && c < 127 && c != '\\' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02X", c)
		}
	}
	return sb.String()
}

// JSONValue converts a value to what encoding/json should write: numbers stay numbers
// (decimals and huge integers exactly, as json.Number), lists and structs nest, times and
// everything else are their Format text. NaN and ±Inf become strings.
func JSONValue(v any, typ string) any {
	switch x := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return x
	case float32:
		return jsonFloat(float64(x), 32)
	case float64:
		return jsonFloat(x, 64)
	case *big.Int:
		return json.Number(x.String())
	case duckdb.Decimal:
		return json.Number(FormatDecimal(x))
	case []any:
		elem := strings.TrimSuffix(typ, "[]")
		if i := strings.LastIndexByte(typ, '['); i > 0 && !strings.HasSuffix(typ, "[]") {
			elem = typ[:i]
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = JSONValue(e, elem)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = JSONValue(e, structFieldType(typ, k))
		}
		return out
	case duckdb.Map:
		out := make([]any, 0, len(x))
		for k, e := range x {
			out = append(out, map[string]any{"key": JSONValue(k, ""), "value": JSONValue(e, "")})
		}
		return out
	}
	return Format(v, typ)
}

func jsonFloat(f float64, bits int) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return FormatFloat(f, bits)
	}
	if bits == 32 {
		return json.Number(strconv.FormatFloat(f, 'g', -1, 32))
	}
	return f
}

// structFieldType finds a field's type in "STRUCT(a INTEGER, b VARCHAR)"; "" if unknown.
func structFieldType(typ, field string) string {
	if !strings.HasPrefix(typ, "STRUCT(") {
		return ""
	}
	body := typ[len("STRUCT(") : len(typ)-1]
	depth, start := 0, 0
	for i := 0; i <= len(body); i++ {
		if i == len(body) || body[i] == ',' && depth == 0 {
			part := strings.TrimSpace(body[start:i])
			name, t, _ := strings.Cut(part, " ")
			if strings.Trim(name, `"`) == field {
				return t
			}
			start = i + 1
			continue
		}
		switch body[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	return ""
}
