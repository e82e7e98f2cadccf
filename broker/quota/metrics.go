package quota

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	labels    = []string{"quota_type", "user", "client_id", "ip"}
	rateDesc  = prometheus.NewDesc("tagpipe_broker_quota_rate", "Rate measured over the quota window: bytes per second (produce, fetch), percent of one thread (request) or new connections per second (connection_creation: of an ip, or broker-wide with no ip), by quota entity.", labels, nil)
	limitDesc = prometheus.NewDesc("tagpipe_broker_quota_limit", "The quota the entity's rate is held to (same unit as tagpipe_broker_quota_rate).", labels, nil)
	totalDesc = prometheus.NewDesc("tagpipe_broker_quota_recorded_total", "Everything recorded against the quota: bytes (produce, fetch), percent-seconds (request) or connections accepted (connection_creation).", labels, nil)
	thrDesc   = prometheus.NewDesc("tagpipe_broker_quota_throttled_total", "Responses that carried a throttle time for this quota (connection_creation: connections delayed).", labels, nil)
	thrTDesc  = prometheus.NewDesc("tagpipe_broker_quota_throttle_seconds_total", "Throttle time given for this quota (the channel is muted that long; connection_creation: the accept waits, or the refused connection is held, that long).", labels, nil)
)

// Collector exports the entities' rates. At most MaxMetricEntities series per metric:
// the entities throttled the longest first; the rest are summed into one series
// labelled user="<other>", client_id="<other>", ip="<other>", so a client that invents client ids cannot
// grow /metrics without bound.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rateDesc, limitDesc, totalDesc, thrDesc, thrTDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	stats := c.m.Stats()
	slices.SortFunc(stats, func(a, b Stat) int {
		return cmp.Or(cmp.Compare(b.ThrottleTime, a.ThrottleTime), cmp.Compare(a.Type, b.Type),
			cmp.Compare(a.Tags.User, b.Tags.User), cmp.Compare(a.Tags.ClientID, b.Tags.ClientID), cmp.Compare(a.Tags.IP, b.Tags.IP))
	})
	var other [numTypes]*Stat
	for i, s := range stats {
		if i >= c.m.opts.MaxMetricEntities {
			o := other[s.Type]
			if o == nil {
				o = &Stat{Type: s.Type, Tags: Tags{User: "<other>", ClientID: "<other>", IP: "<other>"}}
				other[s.Type] = o
			}
			o.Rate += s.Rate
			o.Total += s.Total
			o.Throttled += s.Throttled
			o.ThrottleTime += s.ThrottleTime
			continue
		}
		emit(ch, s, true)
	}
	for _, o := range other {
		if o != nil {
			emit(ch, *o, false)
		}
	}
}

func emit(ch chan<- prometheus.Metric, s Stat, withLimit bool) {
	lv := []string{s.Type.String(), s.Tags.User, s.Tags.ClientID, s.Tags.IP}
	ch <- prometheus.MustNewConstMetric(rateDesc, prometheus.GaugeValue, s.Rate, lv...)
	if withLimit {
		ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, s.Limit, lv...)
	}
	ch <- prometheus.MustNewConstMetric(totalDesc, prometheus.CounterValue, s.Total, lv...)
	ch <- prometheus.MustNewConstMetric(thrDesc, prometheus.CounterValue, float64(s.Throttled), lv...)
	ch <- prometheus.MustNewConstMetric(thrTDesc, prometheus.CounterValue, s.ThrottleTime.Seconds(), lv...)
}
