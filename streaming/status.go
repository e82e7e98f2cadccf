package streaming

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Progress is what a job's checkpoint says about it: the last committed batch and the
// next offset to read per partition.
type Progress struct {
	LastBatch int64
	Plan      BatchInfo
	Ends      map[TopicPartition]int64
}

// ReadProgress reads the last committed batch of the job whose checkpoint is dir, without
// taking its lock (safe while the engine runs). ok is false when nothing was committed.
func ReadProgress(dir string) (p Progress, ok bool, err error) {
	cp := &checkpoint{dir: dir}
	last, err := cp.lastID("commits")
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, nil // the job has not started yet
	}
	if err != nil || last < 0 {
		return p, false, err
	}
	pl, found, err := cp.readPlan(last)
	if err != nil {
		return p, false, err
	}
	if !found {
		return p, false, fmt.Errorf("checkpoint %s: batch %d committed but its plan is missing", dir, last)
	}
	return Progress{LastBatch: last, Plan: BatchInfo{ID: pl.BatchID, Time: pl.BatchTime, Ranges: pl.Ranges}, Ends: pl.Ranges.Ends()}, true, nil
}

// PartitionLag is one partition's distance between the job and the topic's end.
type PartitionLag struct {
	TopicPartition
	Committed int64 // next offset the job reads
	End       int64 // high watermark
	Lag       int64
}

// Lag asks the brokers for the end offsets of topics (or of every topic pattern matches,
// when set) and compares them with ends (a partition missing from ends has not been
// read: its lag counts from the log start).
func Lag(ctx context.Context, brokers []string, security *kafkasec.Security, topics []string, pattern *regexp.Regexp, ends map[TopicPartition]int64) ([]PartitionLag, error) {
	src := newSource(brokers, security, newSubscription(topics, pattern), "", "tagpipe-stream-status")
	defer src.close()
	tps, err := src.partitions(ctx)
	if err != nil {
		return nil, err
	}
	first, last, err := src.offsets(ctx, tps)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionLag, 0, len(tps))
	for _, tp := range tps {
		c, ok := ends[tp]
		if !ok {
			c = first[tp]
		}
		out = append(out, PartitionLag{TopicPartition: tp, Committed: c, End: last[tp], Lag: max(0, last[tp]-c)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
