package quota

// rate is Kafka's windowed Rate (org.apache.kafka.common.metrics.stats.Rate over a
// SampledStat with WindowedSum, as of Kafka 3.8): the values recorded in the samples of
// `window` each that overlap the last `samples` windows, divided by the time since the
// oldest one began. A sample is dropped only when its last record is a whole span old
// (samples × window), so a sample that began before the span but has records inside it
// still counts, along with its start: one more sample than `samples` is kept for it.
// (Before Kafka 3.8 a sample was dropped when its start left the span: its records
// vanished from the sum while the span still covered part of them, and the rate dipped
// each time a sample expired.) The span is at least samples-1 whole windows, so a
// client that just started is measured as if it had been idle before (a burst of up to
// samples-1 windows' worth of quota passes unthrottled, as in Kafka). Times are
// nanoseconds on the manager's clock. Not safe for concurrent use: the sensor holding
// it locks.
type rate struct {
	samples []sample
	cur     int
	n       int   // number of samples (quota.window.num)
	window  int64 // one sample's window in ns (quota.window.size.seconds)
}

type sample struct {
	start int64 // when the window began
	last  int64 // the last record in it
	value float64
}

func newRate(n int, window int64) *rate { return &rate{n: n, window: window} }

// record adds v at now, starting a new window (the oldest of n+1 samples reused) when
// the current one is complete.
func (r *rate) record(v float64, now int64) {
	if len(r.samples) == 0 {
		r.samples = append(r.samples, sample{start: now, last: now})
	}
	s := &r.samples[r.cur]
	if now-s.start >= r.window {
		r.cur = (r.cur + 1) % (r.n + 1)
		if r.cur >= len(r.samples) {
			r.samples = append(r.samples, sample{})
		}
		r.samples[r.cur] = sample{start: now}
		s = &r.samples[r.cur]
	}
	s.value += v
	s.last = now
}

// purge resets the samples whose last record is older than the whole span.
func (r *rate) purge(now int64) {
	expire := int64(r.n) * r.window
	for i := range r.samples {
		if now-r.samples[i].last >= expire {
			r.samples[i] = sample{start: now, last: now}
		}
	}
}

// windowSize is the span the rate divides by at now, in ns (Kafka's Rate.windowSize):
// from the oldest sample's start, at least n-1 whole windows, at least 1 ms.
func (r *rate) windowSize(now int64) int64 {
	r.purge(now)
	oldest := now
	for _, s := range r.samples {
		oldest = min(oldest, s.start)
	}
	elapsed := now - oldest
	if full := elapsed / r.window; full < int64(r.n-1) {
		elapsed += (int64(r.n-1) - full) * r.window
	}
	return max(elapsed, 1e6)
}

// measure is the rate at now, per second.
func (r *rate) measure(now int64) float64 {
	size := r.windowSize(now)
	sum := 0.0
	for _, s := range r.samples {
		sum += s.value
	}
	return sum / (float64(size) / 1e9)
}

// throttle is how long to wait at now until the rate is back to bound, assuming nothing
// more is recorded (Kafka's QuotaUtils.throttleTime: (rate-bound)/bound of the window
// the rate was measured over), in ns; 0 while the rate is within bound.
func (r *rate) throttle(bound float64, now int64) (rateNow float64, ns int64) {
	v := r.measure(now)
	if v <= bound {
		return v, 0
	}
	return v, int64((v - bound) / bound * float64(r.windowSize(now)))
}
