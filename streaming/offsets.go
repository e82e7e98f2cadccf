package streaming

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// OffsetRange is the half-open range [From, Until) of one partition read by one batch.
type OffsetRange struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	Until     int64  `json:"until"`
}

// TP returns the range's partition.
func (r OffsetRange) TP() TopicPartition { return TopicPartition{r.Topic, r.Partition} }

// Count is the number of offsets in the range (records, unless the topic is compacted).
func (r OffsetRange) Count() int64 { return r.Until - r.From }

// Ranges is a batch's set of offset ranges, kept sorted by topic and partition.
type Ranges []OffsetRange

func (rs Ranges) sort() {
	slices.SortFunc(rs, func(a, b OffsetRange) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}

// Count is the total number of offsets of the batch.
func (rs Ranges) Count() int64 {
	var n int64
	for _, r := range rs {
		n += r.Count()
	}
	return n
}

// Ends returns the next offset to read per partition after this batch.
func (rs Ranges) Ends() map[TopicPartition]int64 {
	m := make(map[TopicPartition]int64, len(rs))
	for _, r := range rs {
		m[r.TP()] = r.Until
	}
	return m
}

// Encode is the JSON form stored in checkpoints and warehouse snapshot properties.
func (rs Ranges) Encode() string {
	b, err := json.Marshal(rs)
	if err != nil {
		panic("BUG: cannot encode ranges: " + err.Error())
	}
	return string(b)
}

// DecodeRanges parses Ranges.Encode's output.
func DecodeRanges(s string) (Ranges, error) {
	var rs Ranges
	if err := json.Unmarshal([]byte(s), &rs); err != nil {
		return nil, fmt.Errorf("cannot decode offset ranges %q: %w", s, err)
	}
	return rs, nil
}

// Record is one Kafka record of a batch.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Time is the record timestamp (create or log-append time).
	Time    time.Time
	Headers []Header
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Header returns the value of the first header named key.
func (r *Record) Header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// BatchInfo describes one micro-batch to operators and outputs.
type BatchInfo struct {
	// ID counts batches from 0; a replayed batch keeps its ID.
	ID int64
	// Time is the batch's logical time (a multiple of the interval). Windows and state
	// timeouts use it, never the wall clock, so a replay computes the same result.
	Time   time.Time
	Ranges Ranges
}

// Snapshot property keys the warehouse sinks write (see streaming/pipeline).
const (
	PropPipeline = "streaming.pipeline"
	PropBatchID  = "streaming.batch_id"
	PropRanges   = "streaming.offset_ranges"
	PropBatchAt  = "streaming.batch_time"
)
