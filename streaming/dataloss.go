package streaming

import (
	"errors"
	"fmt"
)

// ErrDataLoss is in the error that stops an engine with FailOnDataLoss set when offsets
// it was to read are gone: deleted by retention or DeleteRecords before they were read,
// or the partition's end moved below where the job had read to (the topic was deleted and
// recreated, or its log truncated). As with Spark's Kafka source (failOnDataLoss), the
// engine does not retry: the records will not come back. With fail_on_data_loss: false
// the engine goes on past the gap.
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
}

func (d DataLoss) Error() string {
	what := fmt.Sprintf("offsets %d-%d were deleted before they were read (retention or DeleteRecords; the log starts at %d)", d.From, d.Until-1, d.Until)
	if !d.Deleted {
		what = fmt.Sprintf("the partition now ends at offset %d, below offset %d the job had reached (topic deleted and recreated, or log truncated)", d.From, d.Until)
	}
	return fmt.Sprintf("%s: %s: %v; set streaming.fail_on_data_loss: false to go on past the gap", d.TopicPartition, what, ErrDataLoss)
}

func (d DataLoss) Unwrap() error { return ErrDataLoss }

// dataLoss reports gap d: with FailOnDataLoss it is returned as the batch's error (the
// engine stops), else it is logged and skipped; deleted offsets are counted in
// tagpipe_streaming_records_lost_total.
func (e *Engine) dataLoss(d DataLoss) error {
	if d.Until <= d.From {
		return nil
	}
	if e.opts.FailOnDataLoss {
		return d
	}
	if d.Deleted {
		e.log.Warn("records deleted before they were read; skipping them (fail_on_data_loss: false)",
			"partition", d.TopicPartition.String(), "from", d.From, "log_start", d.Until)
		e.met.lost.Add(float64(d.Until - d.From))
	} else {
		e.log.Warn("partition end moved below the job's position (topic recreated?); reading it from its start (fail_on_data_loss: false)",
			"partition", d.TopicPartition.String(), "end", d.From, "position", d.Until)
	}
	return nil
}
