package warehouse

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// DocKey is the Arrow field metadata key that carries a column's documentation.
const DocKey = "doc"

// Field builds a nullable Arrow field with a doc string.
func Field(name string, typ arrow.DataType, doc string) arrow.Field {
	f := arrow.Field{Name: name, Type: typ, Nullable: true}
	if doc != "" {
		f.Metadata = arrow.NewMetadata([]string{DocKey}, []string{doc})
	}
	return f
}

// RequiredField is Field with Nullable false.
func RequiredField(name string, typ arrow.DataType, doc string) arrow.Field {
	f := Field(name, typ, doc)
	f.Nullable = false
	return f
}

// FieldDoc returns a field's doc string ("" if none).
func FieldDoc(f arrow.Field) string {
	if i := f.Metadata.FindKey(DocKey); i >= 0 {
		return f.Metadata.Values()[i]
	}
	return ""
}

// fieldJSON is a column in a manifest (see FORMAT.md).
type fieldJSON struct {
	Name     string    `json:"name"`
	Type     *typeJSON `json:"type"`
	Nullable bool      `json:"nullable"`
	Doc      string    `json:"doc,omitempty"`
}

// typeJSON is an Arrow type in a manifest. Kind is one of: string, binary, bool,
// int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64,
// date32, timestamp (Unit s|ms|us|ns, TZ optional), list (Elem), map (Key, Value),
// struct (Fields).
type typeJSON struct {
	Kind   string      `json:"kind"`
	Unit   string      `json:"unit,omitempty"`
	TZ     string      `json:"tz,omitempty"`
	Elem   *fieldJSON  `json:"elem,omitempty"`
	Key    *fieldJSON  `json:"key,omitempty"`
	Value  *fieldJSON  `json:"value,omitempty"`
	Fields []fieldJSON `json:"fields,omitempty"`
}

var unitNames = map[arrow.TimeUnit]string{arrow.Second: "s", arrow.Millisecond: "ms", arrow.Microsecond: "us", arrow.Nanosecond: "ns"}

var primitiveKinds = map[arrow.Type]string{
	arrow.STRING: "string", arrow.BINARY: "binary", arrow.BOOL: "bool",
	arrow.INT8: "int8", arrow.INT16: "int16", arrow.INT32: "int32", arrow.INT64: "int64",
	arrow.UINT8: "uint8", arrow.UINT16: "uint16", arrow.UINT32: "uint32", arrow.UINT64: "uint64",
	arrow.FLOAT32: "float32", arrow.FLOAT64: "float64", arrow.DATE32: "date32",
}

var primitiveTypes = map[string]arrow.DataType{
	"string": arrow.BinaryTypes.String, "binary": arrow.BinaryTypes.Binary, "bool": arrow.FixedWidthTypes.Boolean,
	"int8": arrow.PrimitiveTypes.Int8, "int16": arrow.PrimitiveTypes.Int16, "int32": arrow.PrimitiveTypes.Int32, "int64": arrow.PrimitiveTypes.Int64,
	"uint8": arrow.PrimitiveTypes.Uint8, "uint16": arrow.PrimitiveTypes.Uint16, "uint32": arrow.PrimitiveTypes.Uint32, "uint64": arrow.PrimitiveTypes.Uint64,
	"float32": arrow.PrimitiveTypes.Float32, "float64": arrow.PrimitiveTypes.Float64, "date32": arrow.FixedWidthTypes.Date32,
}

func encodeField(f arrow.Field) (fieldJSON, error) {
	t, err := encodeType(f.Type)
	if err != nil {
		return fieldJSON{}, fmt.Errorf("column %q: %w", f.Name, err)
	}
	return fieldJSON{Name: f.Name, Type: t, Nullable: f.Nullable, Doc: FieldDoc(f)}, nil
}

func encodeType(dt arrow.DataType) (*typeJSON, error) {
	if k, ok := primitiveKinds[dt.ID()]; ok {
		return &typeJSON{Kind: k}, nil
	}
	switch t := dt.(type) {
	case *arrow.TimestampType:
		return &typeJSON{Kind: "timestamp", Unit: unitNames[t.Unit], TZ: t.TimeZone}, nil
	case *arrow.MapType:
		k, err := encodeField(t.KeyField())
		if err != nil {
			return nil, err
		}
		v, err := encodeField(t.ItemField())
		if err != nil {
			return nil, err
		}
		return &typeJSON{Kind: "map", Key: &k, Value: &v}, nil
	case *arrow.ListType:
		e, err := encodeField(t.ElemField())
		if err != nil {
			return nil, err
		}
		return &typeJSON{Kind: "list", Elem: &e}, nil
	case *arrow.StructType:
		out := &typeJSON{Kind: "struct"}
		for _, f := range t.Fields() {
			e, err := encodeField(f)
			if err != nil {
				return nil, err
			}
			out.Fields = append(out.Fields, e)
		}
		return out, nil
	}
	return nil, fmt.Errorf("type %s is not supported by the warehouse (use string, binary, bool, int*, uint*, float32/64, date32, timestamp, list, map or struct)", dt)
}

func decodeField(f fieldJSON) (arrow.Field, error) {
	if f.Type == nil {
		return arrow.Field{}, fmt.Errorf("column %q: no type", f.Name)
	}
	t, err := decodeType(f.Type)
	if err != nil {
		return arrow.Field{}, fmt.Errorf("column %q: %w", f.Name, err)
	}
	out := Field(f.Name, t, f.Doc)
	out.Nullable = f.Nullable
	return out, nil
}

func decodeType(t *typeJSON) (arrow.DataType, error) {
	if dt, ok := primitiveTypes[t.Kind]; ok {
		return dt, nil
	}
	switch t.Kind {
	case "timestamp":
		for u, name := range unitNames {
			if name == t.Unit {
				return &arrow.TimestampType{Unit: u, TimeZone: t.TZ}, nil
			}
		}
		return nil, fmt.Errorf("bad timestamp unit %q", t.Unit)
	case "list":
		if t.Elem == nil {
			return nil, fmt.Errorf("list without elem")
		}
		e, err := decodeField(*t.Elem)
		if err != nil {
			return nil, err
		}
		return arrow.ListOfField(e), nil
	case "map":
		if t.Key == nil || t.Value == nil {
			return nil, fmt.Errorf("map without key or value")
		}
		k, err := decodeField(*t.Key)
		if err != nil {
			return nil, err
		}
		k.Nullable = false
		v, err := decodeField(*t.Value)
		if err != nil {
			return nil, err
		}
		return arrow.MapOfFields(k, v), nil
	case "struct":
		fs := make([]arrow.Field, len(t.Fields))
		for i, f := range t.Fields {
			d, err := decodeField(f)
			if err != nil {
				return nil, err
			}
			fs[i] = d
		}
		return arrow.StructOf(fs...), nil
	}
	return nil, fmt.Errorf("unknown type kind %q", t.Kind)
}

func encodeSchema(s *arrow.Schema) ([]fieldJSON, error) {
	out := make([]fieldJSON, s.NumFields())
	for i, f := range s.Fields() {
		e, err := encodeField(f)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func decodeSchema(fs []fieldJSON) (*arrow.Schema, error) {
	out := make([]arrow.Field, len(fs))
	for i, f := range fs {
		d, err := decodeField(f)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return arrow.NewSchema(out, nil), nil
}

// sameType reports whether two Arrow types store the same values, ignoring the
// names of list elements and map entries (Parquet writers name them differently)
// and nested nullability.
func sameType(a, b arrow.DataType) bool {
	if a.ID() != b.ID() {
		return false
	}
	switch at := a.(type) {
	case *arrow.TimestampType:
		bt := b.(*arrow.TimestampType)
		return at.Unit == bt.Unit && (at.TimeZone == "") == (bt.TimeZone == "")
	case *arrow.MapType:
		bt := b.(*arrow.MapType)
		return sameType(at.KeyType(), bt.KeyType()) && sameType(at.ItemType(), bt.ItemType())
	case *arrow.ListType:
		return sameType(at.Elem(), b.(*arrow.ListType).Elem())
	case *arrow.StructType:
		bt := b.(*arrow.StructType)
		if at.NumFields() != bt.NumFields() {
			return false
		}
		for i := range at.NumFields() {
			if at.Field(i).Name != bt.Field(i).Name || !sameType(at.Field(i).Type, bt.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return arrow.TypeEqual(a, b)
}

// evolve checks that next is an allowed evolution of cur: every column of cur kept
// with the same type (a required column may become nullable), new columns nullable.
// It returns a readable list of what is wrong.
func evolve(cur, next *arrow.Schema) error {
	var errs []string
	for _, f := range cur.Fields() {
		idx := next.FieldIndices(f.Name)
		if len(idx) == 0 {
			errs = append(errs, fmt.Sprintf("column %q is missing (dropping columns is not supported)", f.Name))
			continue
		}
		nf := next.Field(idx[0])
		if !sameType(f.Type, nf.Type) {
			errs = append(errs, fmt.Sprintf("column %q changes type %s -> %s (only adding nullable columns is supported)", f.Name, f.Type, nf.Type))
		}
		if f.Nullable && !nf.Nullable {
			errs = append(errs, fmt.Sprintf("column %q becomes NOT NULL (old rows may hold nulls)", f.Name))
		}
	}
	for _, f := range next.Fields() {
		if len(cur.FieldIndices(f.Name)) == 0 && !f.Nullable {
			errs = append(errs, fmt.Sprintf("new column %q must be nullable (old files have no values for it)", f.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("incompatible schema change: %s", strings.Join(errs, "; "))
	}
	return nil
}

// checkSchema checks a table schema on its own.
func checkSchema(s *arrow.Schema, keys []string) error {
	if s == nil || s.NumFields() == 0 {
		return fmt.Errorf("schema has no columns")
	}
	seen := map[string]bool{}
	for _, f := range s.Fields() {
		if f.Name == "" {
			return fmt.Errorf("schema has a column without a name")
		}
		if seen[f.Name] {
			return fmt.Errorf("column %q appears twice", f.Name)
		}
		seen[f.Name] = true
		if _, err := encodeType(f.Type); err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
		}
	}
	for _, k := range keys {
		idx := s.FieldIndices(k)
		if len(idx) == 0 {
			return fmt.Errorf("partition key %q is not a column of the schema", k)
		}
		switch s.Field(idx[0]).Type.ID() {
		case arrow.STRING, arrow.DATE32, arrow.INT32, arrow.INT64, arrow.INT16, arrow.INT8, arrow.BOOL:
		default:
			return fmt.Errorf("partition key %q has type %s; use string, date32, bool or an integer", k, s.Field(idx[0]).Type)
		}
	}
	if len(keys) == s.NumFields() {
		return fmt.Errorf("every column is a partition key; files would have no columns")
	}
	return nil
}

// dataSchema is the table schema without its partition columns: what a file holds.
func dataSchema(s *arrow.Schema, keys []string) *arrow.Schema {
	isKey := map[string]bool{}
	for _, k := range keys {
		isKey[k] = true
	}
	var fs []arrow.Field
	for _, f := range s.Fields() {
		if !isKey[f.Name] {
			fs = append(fs, f)
		}
	}
	return arrow.NewSchema(fs, nil)
}
