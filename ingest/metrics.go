package ingest

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds every component's counters. It is one prometheus.Collector (metric names
// tagpipe_ingest_<kind>_<counter>_total with labels agent, component, type) and also
// the source of `tagpipe ingest status`.
type Metrics struct {
	mu    sync.Mutex
	comps []*Counters
	// BatchSeconds is the sink batch latency (take → acknowledged commit).
	BatchSeconds *prometheus.HistogramVec
}

// NewMetrics registers on reg (nil: not registered anywhere).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{BatchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tagpipe_ingest_sink_batch_seconds", Help: "Sink batch latency from take to acknowledged commit.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"agent", "component"})}
	if reg != nil {
		reg.MustRegister(m, m.BatchSeconds)
	}
	return m
}

// Counters are one component's numbers. Kind is source, channel, sink or interceptor.
type Counters struct {
	Agent, Kind, Name, Type string
	mu                      sync.Mutex
	vals                    map[string]*atomic.Int64
	// Gauges, when set, reports current values (channel fill).
	Gauges func() map[string]float64
}

// Component returns (creating) the counters of one component.
func (m *Metrics) Component(agent, kind, name, typ string) *Counters {
	if m == nil {
		return &Counters{Agent: agent, Kind: kind, Name: name, Type: typ}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.comps {
		if c.Agent == agent && c.Kind == kind && c.Name == name {
			return c
		}
	}
	c := &Counters{Agent: agent, Kind: kind, Name: name, Type: typ}
	m.comps = append(m.comps, c)
	return c
}

// Observe records one sink batch's latency.
func (m *Metrics) Observe(agent, sink string, d time.Duration) {
	if m != nil {
		m.BatchSeconds.WithLabelValues(agent, sink).Observe(d.Seconds())
	}
}

func (c *Counters) counter(name string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vals == nil {
		c.vals = map[string]*atomic.Int64{}
	}
	v, ok := c.vals[name]
	if !ok {
		v = new(atomic.Int64)
		c.vals[name] = v
	}
	return v
}

// Add adds n to a counter (nil-safe).
func (c *Counters) Add(name string, n int64) {
	if c != nil {
		c.counter(name).Add(n)
	}
}

// Get reads a counter.
func (c *Counters) Get(name string) int64 {
	if c == nil {
		return 0
	}
	return c.counter(name).Load()
}

// Snapshot is one component's values for status output.
type Snapshot struct {
	Agent    string             `json:"agent"`
	Kind     string             `json:"kind"`
	Name     string             `json:"name"`
	Type     string             `json:"type"`
	Counters map[string]int64   `json:"counters"`
	Gauges   map[string]float64 `json:"gauges,omitempty"`
}

// Snapshot returns every component's values, ordered by agent, kind, name.
func (m *Metrics) Snapshot() []Snapshot {
	m.mu.Lock()
	comps := append([]*Counters(nil), m.comps...)
	m.mu.Unlock()
	var out []Snapshot
	for _, c := range comps {
		s := Snapshot{Agent: c.Agent, Kind: c.Kind, Name: c.Name, Type: c.Type, Counters: map[string]int64{}}
		c.mu.Lock()
		for k, v := range c.vals {
			s.Counters[k] = v.Load()
		}
		c.mu.Unlock()
		if c.Gauges != nil {
			s.Gauges = c.Gauges()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Agent != b.Agent {
			return a.Agent < b.Agent
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	return out
}

// Describe sends nothing: the set of counters grows as components count (an unchecked
// collector).
func (m *Metrics) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	labels := []string{"agent", "component", "type"}
	for _, s := range m.Snapshot() {
		for k, v := range s.Counters {
			d := prometheus.NewDesc("tagpipe_ingest_"+s.Kind+"_"+k+"_total", "Collector "+s.Kind+" counter "+k+".", labels, nil)
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), s.Agent, s.Name, s.Type)
		}
		for k, v := range s.Gauges {
			d := prometheus.NewDesc("tagpipe_ingest_"+s.Kind+"_"+k, "Collector "+s.Kind+" gauge "+k+".", labels, nil)
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.Agent, s.Name, s.Type)
		}
	}
}
