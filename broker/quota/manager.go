package quota

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Manager. Zero values mean DefaultOptions' values.
type Options struct {
	// WindowNum is the number of samples a rate is measured over (Kafka's
	// quota.window.num, 11).
	WindowNum int
	// WindowSize is one sample's window (Kafka's quota.window.size.seconds, 1 s).
	WindowSize time.Duration
	// Now is the clock rates are measured with; nil = time.Now.
	Now func() time.Time
	// MaxMetricEntities bounds the entities exported as metrics (the ones with the most
	// throttle time); the others are summed in one "other" series.
	MaxMetricEntities int
	// IdleExpiry forgets the rate of an entity not recorded for this long (Kafka's
	// sensors expire after an hour of inactivity).
	IdleExpiry time.Duration
}

// DefaultOptions are Kafka's defaults.
func DefaultOptions() Options {
	return Options{WindowNum: 11, WindowSize: time.Second, MaxMetricEntities: 100, IdleExpiry: time.Hour}
}

// Manager measures the clients' rates against their quotas and computes throttle
// times, as Kafka's ClientQuotaManager (bandwidth) and ClientRequestQuotaManager
// (request time) do. Safe for concurrent use. Its cost when no quota is set is one
// atomic load (Active).
type Manager struct {
	opts  Options
	store atomic.Pointer[Store] // set once by Open, before any connection
	now   func() time.Time

	// mu guards sensors (the map); each sensor has its own lock. Nothing else is taken
	// under mu or under a sensor's lock.
	mu      sync.Mutex
	sensors map[sensorKey]*sensor
	sweepAt int64
}

type sensorKey struct {
	t    Type
	tags Tags
}

// sensor is one entity's rate of one type and what it was throttled.
type sensor struct {
	mu         sync.Mutex
	rate       *rate
	last       int64   // last record, ns
	limit      float64 // the quota at the last record
	total      float64 // everything recorded (bytes, or percent-seconds)
	throttled  uint64  // answers with a throttle
	throttleNs int64   // throttle time given
}

// NewManager returns a manager with no quota until Open.
func NewManager(opts Options) *Manager {
	def := DefaultOptions()
	if opts.WindowNum <= 1 {
		opts.WindowNum = def.WindowNum
	}
	if opts.WindowSize <= 0 {
		opts.WindowSize = def.WindowSize
	}
	if opts.MaxMetricEntities <= 0 {
		opts.MaxMetricEntities = def.MaxMetricEntities
	}
	if opts.IdleExpiry <= 0 {
		opts.IdleExpiry = def.IdleExpiry
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Manager{opts: opts, now: now, sensors: map[sensorKey]*sensor{}}
}

// Open loads the quota store kept at path (see Store) and measures against it.
func (m *Manager) Open(path string) error {
	s, err := Open(path)
	if err != nil {
		return err
	}
	m.store.Store(s)
	return nil
}

// Store is the quota store the manager reads; nil before Open.
func (m *Manager) Store() *Store { return m.store.Load() }

// Active reports whether any quota is set (one atomic load): when not, connections skip
// quotas altogether.
func (m *Manager) Active() bool { return m != nil && !m.store.Load().Load().Empty() }

// Quotas are the current quotas.
func (m *Manager) Quotas() *Quotas { return m.store.Load().Load() }

func (m *Manager) sensor(k sensorKey, now int64) *sensor {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sensors[k]
	if s == nil {
		if now >= m.sweepAt {
			m.sweepLocked(now)
		}
		s = &sensor{rate: newRate(m.opts.WindowNum, int64(m.opts.WindowSize))}
		m.sensors[k] = s
	}
	return s
}

// sweepLocked forgets sensors idle for longer than IdleExpiry.
func (m *Manager) sweepLocked(now int64) {
	idle := int64(m.opts.IdleExpiry)
	for k, s := range m.sensors {
		s.mu.Lock()
		old := now-s.last > idle
		s.mu.Unlock()
		if old {
			delete(m.sensors, k)
		}
	}
	m.sweepAt = now + idle/4
}

// Now is the manager's clock (Options.Now). A request reads it once and records
// everything it counts at that instant, as Kafka's KafkaApis passes one timeMs to the
// record, the check and the unrecord of a fetch.
func (m *Manager) Now() time.Time {
	if m == nil {
		return time.Now()
	}
	return m.now()
}

// Record adds v (bytes, or for Request percent-seconds of one thread) at now to the rate
// of the entity whose type-t quota applies to user and clientID, and returns how long
// that client must be throttled: 0 while within its quota or when no quota applies.
// Request throttles are bounded by one window, as in Kafka; byte-rate ones are not.
func (m *Manager) Record(t Type, user, clientID string, v float64, now time.Time) time.Duration {
	s, limit, ok := m.sensorFor(t, user, clientID, now)
	if !ok {
		return 0
	}
	ns := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate.record(v, ns)
	s.last, s.limit = ns, limit
	s.total += v
	_, thr := s.rate.throttle(limit, ns)
	if thr == 0 {
		return 0
	}
	ms := math.Round(float64(thr) / 1e6) // Kafka answers whole milliseconds
	if t == Request {
		ms = min(ms, float64(m.opts.WindowSize/time.Millisecond))
	}
	ms = min(ms, math.MaxInt32)
	if ms <= 0 {
		return 0
	}
	d := time.Duration(ms) * time.Millisecond
	s.throttled++
	s.throttleNs += int64(d)
	return d
}

// RecordNoThrottle adds v at now without checking the quota (Kafka's recordNoThrottle,
// which records a request's network-thread time after its response went out): it
// counts towards the throttle of the client's next request.
func (m *Manager) RecordNoThrottle(t Type, user, clientID string, v float64, now time.Time) {
	s, limit, ok := m.sensorFor(t, user, clientID, now)
	if !ok {
		return
	}
	ns := now.UnixNano()
	s.mu.Lock()
	s.rate.record(v, ns)
	s.last, s.limit = ns, limit
	s.total += v
	s.mu.Unlock()
}

// Unrecord takes v back out of the rate at now, the instant it was recorded at (Kafka's
// unrecordQuotaSensor: a throttled fetch answers no data, so its bytes must not count).
// At another instant the two could land in different samples, and the sample holding
// +v could expire before the one holding -v (or after it).
func (m *Manager) Unrecord(t Type, user, clientID string, v float64, now time.Time) {
	s, _, ok := m.sensorFor(t, user, clientID, now)
	if !ok {
		return
	}
	s.mu.Lock()
	s.rate.record(-v, now.UnixNano())
	s.total -= v
	s.mu.Unlock()
}

// sensorFor is the sensor of the entity whose type-t quota applies to user and
// clientID, and that quota; ok is false when none applies.
func (m *Manager) sensorFor(t Type, user, clientID string, now time.Time) (*sensor, float64, bool) {
	_, tags, limit, ok := m.store.Load().Load().Resolve(t, user, clientID)
	if !ok {
		return nil, 0, false
	}
	return m.sensor(sensorKey{t, tags}, now.UnixNano()), limit, true
}

// MaxValueInWindow is the most a client may record at once without being throttled
// for sure (Kafka's maxValueInQuotaWindow: limit × (samples-1) windows); ok is false
// when no type-t quota applies. Fetch bounds a response's bytes with it.
func (m *Manager) MaxValueInWindow(t Type, user, clientID string) (float64, bool) {
	_, _, limit, ok := m.store.Load().Load().Resolve(t, user, clientID)
	if !ok {
		return 0, false
	}
	return limit * float64(m.opts.WindowNum-1) * m.opts.WindowSize.Seconds(), true
}

// Stat is one entity's measurement, for metrics and tests.
type Stat struct {
	Type  Type
	Tags  Tags
	Limit float64
	// Rate is the rate measured now (per second) and Window the span it was measured
	// over.
	Rate   float64
	Window time.Duration
	// Total is everything recorded; Throttled the answers that carried a throttle and
	// ThrottleTime their sum.
	Total        float64
	Throttled    uint64
	ThrottleTime time.Duration
}

// Stats measures every entity now.
func (m *Manager) Stats() []Stat {
	now := m.now().UnixNano()
	m.mu.Lock()
	keys := make([]sensorKey, 0, len(m.sensors))
	ss := make([]*sensor, 0, len(m.sensors))
	for k, s := range m.sensors {
		keys = append(keys, k)
		ss = append(ss, s)
	}
	m.mu.Unlock()
	out := make([]Stat, len(keys))
	for i, s := range ss {
		s.mu.Lock()
		out[i] = Stat{Type: keys[i].t, Tags: keys[i].tags, Limit: s.limit, Rate: s.rate.measure(now),
			Window: time.Duration(s.rate.windowSize(now)), Total: s.total, Throttled: s.throttled, ThrottleTime: time.Duration(s.throttleNs)}
		s.mu.Unlock()
	}
	return out
}

// Stat measures one entity's rate now (the tags a quota resolves to: see Resolve).
func (m *Manager) Stat(t Type, tags Tags) (Stat, bool) {
	for _, s := range m.Stats() {
		if s.Type == t && s.Tags == tags {
			return s, true
		}
	}
	return Stat{}, false
}

// RecordIPConnection records a new connection from ip (canonical: CanonicalIP) at now
// against the connection_creation_rate that applies to it (ConnectionRate) and returns
// how long the broker must hold the connection before closing it: 0 when it is within
// the quota or no ip quota applies. As Kafka's ConnectionQuotas
// (recordIpConnectionMaybeThrottle), a connection over the quota is taken back out of
// the rate (it is not accepted) and its throttle is bounded by one window.
func (m *Manager) RecordIPConnection(ip string, now time.Time) time.Duration {
	limit, ok := m.store.Load().Load().ConnectionRate(ip)
	if !ok {
		return 0
	}
	return m.recordConnection(Tags{IP: ip}, limit, now, true)
}

// RecordBrokerConnection records a new connection at now against the broker-wide
// connection creation rate limit (Kafka's max.connection.creation.rate) and returns how
// long the acceptor must wait before taking it on (bounded by one window, as Kafka's
// waitForConnectionSlot); the connection stays recorded.
func (m *Manager) RecordBrokerConnection(limit float64, now time.Time) time.Duration {
	return m.recordConnection(Tags{}, limit, now, false)
}

// UnrecordBrokerConnection takes a connection back out of the broker-wide rate at now:
// one refused by its ip quota (Kafka's updateListenerMetrics).
func (m *Manager) UnrecordBrokerConnection(now time.Time) {
	ns := now.UnixNano()
	s := m.sensor(sensorKey{ConnectionCreation, Tags{}}, ns)
	s.mu.Lock()
	s.rate.record(-1, ns)
	s.total--
	s.mu.Unlock()
}

func (m *Manager) recordConnection(tags Tags, limit float64, now time.Time, unrecord bool) time.Duration {
	ns := now.UnixNano()
	s := m.sensor(sensorKey{ConnectionCreation, tags}, ns)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate.record(1, ns)
	s.last, s.limit = ns, limit
	s.total++
	_, thr := s.rate.throttle(limit, ns)
	// QuotaUtils.boundedThrottleTime: whole milliseconds, at most one window.
	ms := min(math.Round(float64(thr)/1e6), float64(m.opts.WindowSize/time.Millisecond))
	if ms <= 0 {
		return 0
	}
	if unrecord {
		s.rate.record(-1, ns)
		s.total--
	}
	d := time.Duration(ms) * time.Millisecond
	s.throttled++
	s.throttleNs += int64(d)
	return d
}
