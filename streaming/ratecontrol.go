package streaming

import (
	"math"
	"time"
)

// PIDOptions tune the adaptive rate estimator (Spark's PIDRateEstimator; same defaults).
type PIDOptions struct {
	Proportional float64 // default 1.0
	Integral     float64 // default 0.2
	Derivative   float64 // default 0.0
	// MinRate is the lowest total rate (records/s) the estimator will suggest; default 100.
	MinRate float64
}

// DefaultPIDOptions are Spark's defaults.
func DefaultPIDOptions() PIDOptions {
	return PIDOptions{Proportional: 1.0, Integral: 0.2, Derivative: 0.0, MinRate: 100}
}

// pidEstimator suggests a total ingestion rate (records/s) that keeps a batch's
// processing time under the batch interval. The error is the gap between the rate
// the last batch was admitted at and the rate the engine actually processed; the
// integral term is the scheduling delay, i.e. the backlog the engine built up, expressed
// as a rate.
type pidEstimator struct {
	o         PIDOptions
	interval  time.Duration
	first     bool
	lastTime  time.Time
	lastRate  float64
	lastError float64
}

func newPIDEstimator(o PIDOptions, interval time.Duration) *pidEstimator {
	return &pidEstimator{o: o, interval: interval, first: true}
}

// compute returns the new rate and true, or false when the batch carries no signal
// (no records or no measurable processing time).
func (p *pidEstimator) compute(batchTime time.Time, records int64, processing, schedulingDelay time.Duration) (float64, bool) {
	if !batchTime.After(p.lastTime) || records <= 0 || processing <= 0 {
		return 0, false
	}
	delaySinceUpdate := batchTime.Sub(p.lastTime).Seconds()
	processingRate := float64(records) / processing.Seconds()
	if p.first {
		p.first = false
		p.lastTime, p.lastRate, p.lastError = batchTime, processingRate, 0
		return processingRate, true
	}
	err := p.lastRate - processingRate
	historicalError := schedulingDelay.Seconds() * processingRate / p.interval.Seconds()
	dErr := (err - p.lastError) / delaySinceUpdate
	rate := p.lastRate - p.o.Proportional*err - p.o.Integral*historicalError - p.o.Derivative*dErr
	rate = math.Max(rate, p.o.MinRate)
	p.lastTime, p.lastRate, p.lastError = batchTime, rate, err
	return rate, true
}

// capRanges limits each partition's share of a batch: max records per partition, a fixed
// per-partition rate, and a total for the batch (the estimator's rate × interval, max
// records per batch; 0 = none) split across partitions in proportion to their lag (as
// Spark's DirectKafkaInputDStream and maxOffsetsPerTrigger do). Every partition with lag
// gets at least one record so no partition starves.
func capRanges(rs Ranges, maxPerPartition int64, ratePerPartition, total float64, interval time.Duration) {
	var totalLag int64
	for _, r := range rs {
		totalLag += r.Until - r.From
	}
	secs := interval.Seconds()
	for i := range rs {
		r := &rs[i]
		lag := r.Until - r.From
		if lag <= 0 {
			continue
		}
		limit := lag
		if maxPerPartition > 0 {
			limit = min(limit, maxPerPartition)
		}
		if ratePerPartition > 0 {
			limit = min(limit, max(1, int64(ratePerPartition*secs)))
		}
		if total > 0 && totalLag > 0 {
			share := total * float64(lag) / float64(totalLag)
			if ratePerPartition > 0 {
				share = min(share, ratePerPartition*secs)
			}
			limit = min(limit, max(1, int64(share)))
		}
		r.Until = r.From + limit
	}
}
