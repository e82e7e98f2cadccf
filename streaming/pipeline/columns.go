package pipeline

import (
	"fmt"
	"math/bits"
	"strings"
	"sync"
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
	c.addValid(b)
}

// addValid adds b, known to be valid UTF-8, as text.
func (c *strCol) addValid(b []byte) {
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

// nullMask records a column's null rows as a bitmap (set bit: null). Until a null
// row follows a valid one the nulls are the first n rows and no bitmap is kept: a
// column the rows leave empty (sources, keys, ids the records do not carry) costs a
// counter, not a bit per row.
type nullMask struct {
	bits  []byte
	n     int
	dense bool // bits holds the nulls; else they are rows [0, n)
}

func (m *nullMask) set(row int) {
	if !m.dense {
		if row == m.n {
			m.n++
			return
		}
		m.dense = true
		for i := range m.n {
			m.setBit(i)
		}
	}
	m.setBit(row)
	m.n++
}

func (m *nullMask) setBit(row int) {
	for row/8 >= len(m.bits) {
		m.bits = append(m.bits, 0)
	}
	bitutil.SetBit(m.bits, row)
}

// validity is the Arrow validity bitmap of n rows (nil: no nulls).
func (m *nullMask) validity(n int) *memory.Buffer {
	if m.n == 0 {
		return nil
	}
	v := make([]byte, bitutil.CeilByte(n)/8)
	if !m.dense {
		for i := range v {
			v[i] = 0xff
		}
		for i := range m.n {
			bitutil.ClearBit(v, i)
		}
		return memory.NewBufferBytes(v)
	}
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
	idx  []int32
	vals strCol
	// shared, when set, holds the values instead of vals: the dictionary of every
	// piece of a batch (see batchDict).
	shared *batchDict
	seen   map[string]int32
	short  shortTable
	last   string // the previous value and its index: runs of one value are common
	lastI  int32
	nulls  nullMask
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
	return c.arrayNulls(c.allNull())
}

// allNull says whether the column has rows and all are null.
func (c *dictCol) allNull() bool { return len(c.idx) > 0 && c.nulls.n == len(c.idx) }

// arrayNulls is array, all-null columns written as plain strings when plainNulls
// (else as a dictionary column of null rows: the chunks of one batch column must
// share one type).
func (c *dictCol) arrayNulls(plainNulls bool) (arrow.Array, error) {
	n := len(c.idx)
	if plainNulls && n == c.nulls.n {
		// All null (sources the records do not carry): a plain column says so
		// without a dictionary for the writer to set up.
		return array.MakeArrayOfNull(memory.DefaultAllocator, arrow.BinaryTypes.String, n), nil
	}
	var dict arrow.Array
	var err error
	if c.shared != nil {
		dict, err = c.shared.array()
	} else {
		dict, err = c.vals.array()
	}
	if err != nil {
		return nil, err
	}
	defer dict.Release()
	d := array.NewData(dictType, n, []*memory.Buffer{c.nulls.validity(n), memory.NewBufferBytes(bytesOf(c.idx))}, nil, c.nulls.n, 0)
	d.SetDictionary(dict.Data())
	defer d.Release()
	return array.MakeFromData(d), nil
}

// reset empties a column for reuse, keeping its memory.

func (c *strCol) reset() {
	c.data, c.offs = c.data[:0], c.offs[:1]
	c.nulls.reset()
}

func (m *nullMask) isSet(row int) bool {
	if !m.dense {
		return row < m.n
	}
	return row/8 < len(m.bits) && bitutil.BitIsSet(m.bits, row)
}

func (m *nullMask) reset() {
	clear(m.bits)
	m.bits, m.n, m.dense = m.bits[:0], 0, false
}

func (c *fixedCol[T]) reset() {
	c.vals = c.vals[:0]
	c.nulls.reset()
}

func (c *boolCol) reset() {
	clear(c.bits)
	c.bits, c.n = c.bits[:0], 0
}

// index is the dictionary index of s, added if new. The map key views the column's own
// copy of s (or the shared dictionary's): s may view a record's bytes, and the column
// (a piece's) outlives its batch. The copy is never overwritten while the map holds
// it (reset clears both; a shared dictionary is reset only with its batch's pieces). Values of
// 1 to 7 bytes (Taobao categories, actions) are looked up in c.short first.
func (c *dictCol) index(s string) int32 {
	k := shortKey(s)
	if k != 0 {
		if i, ok := c.short.get(k); ok {
			return i
		}
	}
	i, ok := c.seen[s]
	if !ok {
		var key string
		if c.shared != nil {
			i, key = c.shared.index(s)
		} else {
			i = int32(c.vals.len())
			c.vals.add(s)
			key = c.vals.view(int(i))
		}
		c.seen[key] = i
	}
	if k != 0 {
		c.short.put(k, i)
	}
	return i
}

// shortKey packs a string of 1 to 7 bytes and its length into a non-zero uint64; 0
// for other strings.
func shortKey(s string) uint64 {
	if len(s) == 0 || len(s) > 7 {
		return 0
	}
	k := uint64(len(s)) << 56
	for i := range len(s) {
		k |= uint64(s[i]) << (8 * i)
	}
	return k
}

// shortTable maps shortKeys to dictionary indices: open addressing, linear probing,
// at most half full. A Go map hashing the string costs several times more per row.
type shortTable struct {
	keys []uint64 // 0: empty
	vals []int32
	n    int
}

func (t *shortTable) slot(k uint64) int {
	return int((k * 0x9E3779B97F4A7C15) >> (64 - bits.TrailingZeros(uint(len(t.keys)))))
}

func (t *shortTable) get(k uint64) (int32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.keys) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case k:
			return t.vals[i], true
		case 0:
			return 0, false
		}
	}
}

func (t *shortTable) put(k uint64, v int32) {
	if 2*(t.n+1) > len(t.keys) {
		old, oldVals := t.keys, t.vals
		size := max(16, 2*len(t.keys))
		t.keys, t.vals, t.n = make([]uint64, size), make([]int32, size), 0
		for i, ok := range old {
			if ok != 0 {
				t.put(ok, oldVals[i])
			}
		}
	}
	mask := len(t.keys) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		if t.keys[i] == 0 {
			t.keys[i], t.vals[i] = k, v
			t.n++
			return
		}
		if t.keys[i] == k {
			t.vals[i] = v
			return
		}
	}
}

func (t *shortTable) reset() {
	clear(t.keys)
	t.n = 0
}

// values is the column's dictionary: its own, or the shared one.
func (c *dictCol) values() *strCol {
	if c.shared != nil {
		return &c.shared.vals
	}
	return &c.vals
}

func (c *dictCol) reset() {
	c.idx = c.idx[:0]
	c.vals.reset()
	clear(c.seen)
	c.short.reset()
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

// batchDict is the dictionary of one column of a batch's pieces (see pieces.go),
// shared by them: each piece's indices point into it, so the pieces' columns are
// chunks of the batch's column with one dictionary, which the warehouse writes as
// one Parquet column chunk without the pieces being copied into a batch column
// first. The pieces parse concurrently: a piece's column looks a value up here once
// (under the lock), then in its own tables.
type batchDict struct {
	mu   sync.Mutex
	vals strCol
	seen map[string]int32
	arr  arrow.Array // the values as Arrow, made once the pieces are built
}

func newBatchDict() *batchDict {
	return &batchDict{vals: *newStrCol(16, 8), seen: map[string]int32{}}
}

// index is s's index, added if new, and the dictionary's copy of s (valid until
// reset; never overwritten before).
func (d *batchDict) index(s string) (int32, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, ok := d.seen[s]
	if !ok {
		if d.arr != nil {
			// The batch is parsed again (a retry after its writes failed; they are
			// over): the next array includes the new value. Arrays made before keep
			// their view of the values, which appending does not change.
			d.arr.Release()
			d.arr = nil
		}
		i = int32(d.vals.len())
		d.vals.add(s)
		d.seen[d.vals.view(int(i))] = i
	}
	return i, d.vals.view(int(i))
}

// array returns the dictionary's values (retained: release it), made on first use
// after the last value was added.
func (d *batchDict) array() (arrow.Array, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.arr == nil {
		a, err := d.vals.array()
		if err != nil {
			return nil, err
		}
		d.arr = a
	}
	d.arr.Retain()
	return d.arr, nil
}

// reset empties the dictionary for a new batch (its pieces are reset with it).
func (d *batchDict) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.arr != nil {
		d.arr.Release()
		d.arr = nil
	}
	// Strings handed out (pieces' map keys, the batch's window keys) view the
	// values: the batch's pieces are done with (reset with it).
	d.vals.reset()
	clear(d.seen)
}
