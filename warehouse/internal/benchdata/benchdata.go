// Package benchdata makes the narrow event rows the warehouse benchmarks write
// and scan (shared by warehouse and warehouse/duckbridge).
package benchdata

import (
	"os"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/warehouse"
)

// Rows is the row count of the write and scan benchmarks: 1M by default,
// TAGPIPE_BENCH_ROWS=10000000 for the 10M.
func Rows() int {
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_ROWS")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

// Schema is the narrow event row of the benchmarks.
func Schema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		warehouse.Field("user_id", arrow.BinaryTypes.String, ""),
		warehouse.Field("item_id", arrow.BinaryTypes.String, ""),
		warehouse.Field("action", arrow.BinaryTypes.String, ""),
		warehouse.Field("event_time", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, ""),
		warehouse.Field("value", arrow.PrimitiveTypes.Float64, ""),
		warehouse.RequiredField("dt", arrow.FixedWidthTypes.Date32, ""),
	}, nil)
}

// Events builds a batch of n narrow events starting at row start; rows are
// spread over `days` days in time order, like a stream.
func Events(start, n, total, days int) arrow.RecordBatch {
	actions := []string{"view", "click", "cart", "fav", "buy", "rate"}
	b := array.NewRecordBuilder(memory.DefaultAllocator, Schema())
	defer b.Release()
	users := b.Field(0).(*array.StringBuilder)
	items := b.Field(1).(*array.StringBuilder)
	acts := b.Field(2).(*array.StringBuilder)
	ts := b.Field(3).(*array.TimestampBuilder)
	vals := b.Field(4).(*array.Float64Builder)
	dts := b.Field(5).(*array.Date32Builder)
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	span := time.Duration(days) * 24 * time.Hour
	for i := start; i < start+n; i++ {
		h := uint64(i) * 0x9E3779B97F4A7C15
		users.Append("u" + strconv.FormatUint(h%100_000, 10))
		items.Append("i" + strconv.FormatUint((h>>20)%50_000, 10))
		acts.Append(actions[(h>>40)%6])
		at := base.Add(time.Duration(float64(span) * float64(i) / float64(total)))
		ts.Append(arrow.Timestamp(at.UnixMicro()))
		vals.Append(float64((h>>8)%500) / 100)
		dts.Append(arrow.Date32FromTime(at))
	}
	return b.NewRecordBatch()
}
