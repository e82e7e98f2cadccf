package streaming

import (
	"errors"
	"fmt"
)

// ErrDataLoss is in the error that stops an engine with FailOnDataLoss set when offsets
// it was to read are gone: deleted by retention or DeleteRecords before they were read,
// the partition's end moved below where the job had read to (the topic was deleted and
// recreated, or its log truncated), or the topic has a new topic id (it was deleted and
// recreated, even if the new one holds more records than the job had read). As with
// Spark's Kafka source (failOnDataLoss), the engine does not retry: the records will not
// come back. With fail_on_data_loss: false the engine goes on past the gap.
var ErrDataLoss = errors.New("records lost before they were read")

// DataLoss describes one gap in a partition.
type DataLoss struct {
	TopicPartition
	// Deleted: offsets [From, Until) were deleted before they were read (retention,
	// DeleteRecords); Until is the log start offset.
	// !Deleted: the partition ends at From, below offset Until that the job had read or
	// planned to (a recreated topic or a truncated log); what the old log held past the
	// job's position is unknown.
	From, Until int64
	Deleted     bool
	// PrevTopicID and TopicID, when set, say the topic was deleted and recreated: its
	// topic id was PrevTopicID when the job had read (or planned to read) the partition
	// to Until, and is TopicID now. What the old topic held from Until on is gone; the
	// new topic's partition is read from its start. From is 0.
	PrevTopicID, TopicID string
}

// Recreated says whether the gap is a topic recreated under a new topic id.
func (d DataLoss) Recreated() bool { return d.PrevTopicID != "" }

func (d DataLoss) Error() string {
	what := fmt.Sprintf("offsets %d-%d were deleted before they were read (retention or DeleteRecords; the log starts at %d)", d.From, d.Until-1, d.Until)
	switch {
	case d.Recreated():
		what = fmt.Sprintf("topic %q was deleted and recreated (topic id %s, was %s) after the job had reached offset %d of this partition: what the old topic held from there on is gone", d.Topic, d.TopicID, d.PrevTopicID, d.Until)
	case !d.Deleted:
		what = fmt.Sprintf("the partition now ends at offset %d, below offset %d the job had reached (topic deleted and recreated, or log truncated)", d.From, d.Until)
	}
	return fmt.Sprintf("%s: %s: %v; set streaming.fail_on_data_loss: false to go on past the gap", d.TopicPartition, what, ErrDataLoss)
}

func (d DataLoss) Unwrap() error { return ErrDataLoss }

// dataLoss reports gap d: with FailOnDataLoss it is returned as the batch's error (the
// engine stops), else it is logged and skipped; deleted offsets are counted in
// tagpipe_streaming_records_lost_total, each once.
func (e *Engine) dataLoss(d DataLoss) error {
	if d.Until <= d.From && !d.Recreated() {
		return nil
	}
	if e.opts.FailOnDataLoss {
		return d
	}
	if n := e.newlyLost(d); d.Deleted && n > 0 {
		e.log.Warn("records deleted before they were read; skipping them (fail_on_data_loss: false)",
			"partition", d.TopicPartition.String(), "from", d.From, "log_start", d.Until)
		e.met.lost.Add(float64(n))
	} else if d.Recreated() {
		e.log.Warn("topic deleted and recreated (new topic id); reading it from its start (fail_on_data_loss: false)",
			"partition", d.TopicPartition.String(), "topic_id", d.TopicID, "prev_topic_id", d.PrevTopicID, "position", d.Until)
	} else if !d.Deleted {
		e.log.Warn("partition end moved below the job's position (topic recreated?); reading it from its start (fail_on_data_loss: false)",
			"partition", d.TopicPartition.String(), "end", d.From, "position", d.Until)
	}
	return nil
}

// newlyLost is how many of gap d's deleted offsets were not counted before: the same gap
// can be met more than once (at planning and again in the read, by a prefetched read
// that was thrown away, by a batch read again after a failure). A partition whose end
// moved back or whose topic was recreated starts counting afresh: its offsets are a new
// log's.
func (e *Engine) newlyLost(d DataLoss) int64 {
	e.lostMu.Lock()
	defer e.lostMu.Unlock()
	if !d.Deleted {
		delete(e.lostUpTo, d.TopicPartition)
		return 0
	}
	if e.lostUpTo == nil {
		e.lostUpTo = map[TopicPartition]int64{}
	}
	from := max(d.From, e.lostUpTo[d.TopicPartition])
	if d.Until <= from {
		return 0
	}
	e.lostUpTo[d.TopicPartition] = d.Until
	return d.Until - from
}
