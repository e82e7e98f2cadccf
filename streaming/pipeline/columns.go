package pipeline

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The columns below build a batch's Arrow columns straight into Go slices sized
// for the batch, and hand those to Arrow without copying. Arrow's builders check
// and grow their buffers value by value and re-zero every grown buffer; for the
// 300k-row batches of the events pipeline that cost as much as writing the Parquet.

// strCol is a string column.
type strCol struct {
	data  []byte
	offs  []int32
	nulls nullMask
}

// newStrCol makes room for n values of about avg bytes.
func newStrCol(n, avg int) *strCol {
	offs := make([]int32, 1, n+1)
	return &strCol{data: make([]byte, 0, n*avg), offs: offs}
}

func (c *strCol) add(s string) {
	c.data = append(c.data, s...)
	c.offs = append(c.offs, int32(len(c.data)))
}

// addText adds b as text: invalid UTF-8 (binary garbage on the topic) is replaced
// with U+FFFD so every SQL engine can read the table.
func (c *strCol) addText(b []byte) {
	if !utf8.Valid(b) {
		c.add(strings.ToValidUTF8(string(b), "\uFFFD"))
		return
	}
	c.data = append(c.data, b...)
	c.offs = append(c.offs, int32(len(c.data)))
}

func (c *strCol) null() {
	c.nulls.set(len(c.offs) - 1)
	c.offs = append(c.offs, int32(len(c.data)))
}

// opt adds s, or a null for "".
func (c *strCol) opt(s string) {
	if s == "" {
		c.null()
		return
	}
	c.add(s)
}

func (c *strCol) len() int { return len(c.offs) - 1 }

// array returns the column (the string type's offsets are 32-bit: a column over
// 2 GiB is an error, split the batch).
func (c *strCol) array() (arrow.Array, error) {
	if len(c.data) > 1<<31-1 {
		return nil, fmt.Errorf("string column of %d bytes is over Arrow's 2 GiB limit", len(c.data))
	}
	n := c.len()
	bufs := []*memory.Buffer{c.nulls.validity(n), memory.NewBufferBytes(bytesOf(c.offs)), memory.NewBufferBytes(c.data)}
	d := array.NewData(arrow.BinaryTypes.String, n, bufs, nil, c.nulls.n, 0)
	defer d.Release()
	return array.MakeFromData(d), nil
}

// nullMask records a column's null rows as a bitmap (set bit: null).
type nullMask struct {
	bits []byte
	n    int
}

func (m *nullMask) set(row int) {
	for row/8 >= len(m.bits) {
		m.bits = append(m.bits, 0)
	}
	bitutil.SetBit(m.bits, row)
	m.n++
}

// validity is the Arrow validity bitmap of n rows (nil: no nulls).
func (m *nullMask) validity(n int) *memory.Buffer {
	if m.n == 0 {
		return nil
	}
	v := make([]byte, bitutil.CeilByte(n)/8)
	for i := range v {
		var b byte
		if i < len(m.bits) {
			b = m.bits[i]
		}
		v[i] = ^b
	}
	return memory.NewBufferBytes(v)
}

// fixedCol is a column of fixed-width values.
type fixedCol[T int32 | int64 | float64 | arrow.Timestamp] struct {
	vals  []T
	nulls nullMask
}

func newFixedCol[T int32 | int64 | float64 | arrow.Timestamp](n int) *fixedCol[T] {
	return &fixedCol[T]{vals: make([]T, 0, n)}
}

func (c *fixedCol[T]) add(v T) { c.vals = append(c.vals, v) }

func (c *fixedCol[T]) null() {
	c.nulls.set(len(c.vals))
	c.vals = append(c.vals, 0)
}

func (c *fixedCol[T]) array(dt arrow.DataType) arrow.Array {
	n := len(c.vals)
	d := array.NewData(dt, n, []*memory.Buffer{c.nulls.validity(n), memory.NewBufferBytes(bytesOf(c.vals))}, nil, c.nulls.n, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// tsCol is a timestamp column (microseconds, UTC).
type tsCol struct{ fixedCol[arrow.Timestamp] }

func newTSCol(n int) *tsCol {
	return &tsCol{fixedCol[arrow.Timestamp]{vals: make([]arrow.Timestamp, 0, n)}}
}

// opt adds t, or a null for the zero time.
func (c *tsCol) opt(t time.Time) {
	if t.IsZero() {
		c.null()
		return
	}
	c.add(arrow.Timestamp(t.UnixMicro()))
}

// boolCol is a non-null boolean column.
type boolCol struct {
	bits []byte
	n    int
}

func newBoolCol(n int) *boolCol { return &boolCol{bits: make([]byte, bitutil.CeilByte(n)/8)} }

func (c *boolCol) add(v bool) {
	if c.n/8 >= len(c.bits) {
		c.bits = append(c.bits, 0)
	}
	if v {
		bitutil.SetBit(c.bits, c.n)
	}
	c.n++
}

func (c *boolCol) array() arrow.Array {
	d := array.NewData(arrow.FixedWidthTypes.Boolean, c.n, []*memory.Buffer{nil, memory.NewBufferBytes(c.bits)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// bytesOf views a slice of fixed-width values as bytes (no copy; the bytes keep
// the values alive).
func bytesOf[T int32 | int64 | float64 | arrow.Timestamp](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// recordOf assembles a record from columns in schema order and releases them. A
// dictionary column stands for a string column of the schema: the record's schema
// says so (the warehouse writes it as the table's string column).
func recordOf(schema *arrow.Schema, n int, cols ...arrow.Array) arrow.RecordBatch {
	var fields []arrow.Field
	for i, c := range cols {
		if f := schema.Field(i); !arrow.TypeEqual(f.Type, c.DataType()) {
			if fields == nil {
				fields = schema.Fields()
			}
			fields[i].Type = c.DataType()
		}
	}
	if fields != nil {
		md := schema.Metadata()
		schema = arrow.NewSchema(fields, &md)
	}
	rec := array.NewRecordBatch(schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// dictCol is a string column of few distinct values (dt, action, category, topic,
// format, source), built as an Arrow dictionary array: the Parquet writer then takes the
// dictionary and the indices as they are, where for a plain string column arrow-go
// hashes every value into its dictionary (with one heap allocation per value).
type dictCol struct {
	idx   []int32
	vals  strCol
	seen  map[string]int32
	last  string // the previous value and its index: runs of one value are common
	lastI int32
	nulls nullMask
}

func newDictCol(n int) *dictCol {
	return &dictCol{idx: make([]int32, 0, n), vals: *newStrCol(16, 8), seen: map[string]int32{}, lastI: -1}
}

func (c *dictCol) add(s string) {
	if c.lastI < 0 || s != c.last {
		c.last, c.lastI = s, c.index(s)
	}
	c.idx = append(c.idx, c.lastI)
}

func (c *dictCol) null() {
	c.nulls.set(len(c.idx))
	c.idx = append(c.idx, 0)
}

// opt adds s, or a null for "".
func (c *dictCol) opt(s string) {
	if s == "" {
		c.null()
		return
	}
	c.add(s)
}

// dictType is the type of every dictCol: int32 indices into strings.
var dictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

func (c *dictCol) array() (arrow.Array, error) {
	if n := len(c.idx); n > 0 && c.nulls.n == n {
		// All null (sources the records do not carry): a plain column says so
		// without a dictionary for the writer to set up.
		return array.MakeArrayOfNull(memory.DefaultAllocator, arrow.BinaryTypes.String, n), nil
	}
	dict, err := c.vals.array()
	if err != nil {
		return nil, err
	}
	defer dict.Release()
	n := len(c.idx)
	d := array.NewData(dictType, n, []*memory.Buffer{c.nulls.validity(n), memory.NewBufferBytes(bytesOf(c.idx))}, nil, c.nulls.n, 0)
	d.SetDictionary(dict.Data())
	defer d.Release()
	return array.MakeFromData(d), nil
}

// The append methods below concatenate columns built piece by piece (see pieces.go);
// reset empties a column for reuse, keeping its memory.

func (c *strCol) appendCol(o *strCol) {
	base := int32(len(c.data))
	at := c.len()
	c.data = append(c.data, o.data...)
	for _, off := range o.offs[1:] {
		c.offs = append(c.offs, base+off)
	}
	c.nulls.appendMask(&o.nulls, at)
}

func (c *strCol) reset() {
	c.data, c.offs = c.data[:0], c.offs[:1]
	c.nulls.reset()
}

// appendMask adds o's nulls to m, o's row 0 becoming row at.
func (m *nullMask) appendMask(o *nullMask, at int) {
	if o.n == 0 {
		return
	}
	for i, b := range o.bits {
		for ; b != 0; b &= b - 1 {
			m.set(at + 8*i + bits.TrailingZeros8(b))
		}
	}
}

func (m *nullMask) isSet(row int) bool { return row/8 < len(m.bits) && bitutil.BitIsSet(m.bits, row) }

func (m *nullMask) reset() {
	clear(m.bits)
	m.bits, m.n = m.bits[:0], 0
}

func (c *fixedCol[T]) appendCol(o *fixedCol[T]) {
	at := len(c.vals)
	c.vals = append(c.vals, o.vals...)
	c.nulls.appendMask(&o.nulls, at)
}

func (c *fixedCol[T]) reset() {
	c.vals = c.vals[:0]
	c.nulls.reset()
}

func (c *boolCol) appendCol(o *boolCol) {
	for i := range o.n {
		c.add(bitutil.BitIsSet(o.bits, i))
	}
}

func (c *boolCol) reset() {
	clear(c.bits)
	c.bits, c.n = c.bits[:0], 0
}

// appendCol adds o's rows, their indices mapped into c's dictionary (one map lookup
// per distinct value of o, not per row).
func (c *dictCol) appendCol(o *dictCol) {
	at := len(c.idx)
	remap := make([]int32, o.vals.len())
	for i := range remap {
		remap[i] = c.index(o.vals.view(i))
	}
	if o.nulls.n == 0 {
		for _, i := range o.idx {
			c.idx = append(c.idx, remap[i])
		}
	} else {
		for row, i := range o.idx {
			if o.nulls.isSet(row) {
				i = 0 // as null() adds
			} else {
				i = remap[i]
			}
			c.idx = append(c.idx, i)
		}
	}
	c.nulls.appendMask(&o.nulls, at)
	c.lastI = -1
}

// index is the dictionary index of s, added if new. The map key views the column's own
// copy of s: s may view a record's bytes, and the column (a piece's) outlives its batch.
// The copy is never overwritten while the map holds it (reset clears both).
func (c *dictCol) index(s string) int32 {
	i, ok := c.seen[s]
	if !ok {
		i = int32(c.vals.len())
		c.vals.add(s)
		c.seen[c.vals.view(int(i))] = i
	}
	return i
}

func (c *dictCol) reset() {
	c.idx = c.idx[:0]
	c.vals.reset()
	clear(c.seen)
	c.last, c.lastI = "", -1
	c.nulls.reset()
}

// view is row i as a string viewing the column's data (valid until reset).
func (c *strCol) view(i int) string {
	b := c.data[c.offs[i]:c.offs[i+1]]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
