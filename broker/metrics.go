package broker

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the broker's Prometheus collectors, registered on Options.Registry.
type metrics struct {
	reg                   *prometheus.Registry
	collectors            []prometheus.Collector
	requests              *prometheus.CounterVec
	latency               *prometheus.HistogramVec
	connections           prometheus.Gauge
	bytesIn               prometheus.Counter
	bytesOut              prometheus.Counter
	malformed             prometheus.Counter
	authFailures          prometheus.Counter
	authorizationFailures prometheus.Counter
	producedRecords       prometheus.Counter
	producedBytes         prometheus.Counter
	fetchedBytes          prometheus.Counter
	produceErrors         *prometheus.CounterVec
	retentionDeleted      prometheus.Counter
	compactedRecords      prometheus.Counter
	partitions            prometheus.Gauge
	fetchWaiting          prometheus.Gauge
	throttledConns        prometheus.Gauge
	connsRefused          *prometheus.CounterVec
	acceptDelayed         *prometheus.CounterVec
	acceptBlockedNow      prometheus.Gauge
	acceptBlocked         prometheus.Counter
	// apis caches each API key's request counter and latency observer: looking them up
	// by label (hashing the name, a map lookup under a lock, twice) on every request
	// was a measurable part of a small request's CPU.
	apis [apiMetricsKeys]atomic.Pointer[apiMetrics]
}

// apiMetricsKeys bounds the API keys whose metrics are cached (Kafka's keys are below it).
const apiMetricsKeys = 128

type apiMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func newMetrics(reg *prometheus.Registry, b *Broker) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_broker_requests_total",
			Help: "Kafka requests handled, by API."}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tagpipe_broker_request_duration_seconds",
			Help: "Time to handle one request (including fetch long-polls), by API.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_connections", Help: "Open client connections."}),
		bytesIn:     prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_received_bytes_total", Help: "Request bytes read."}),
		bytesOut:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_sent_bytes_total", Help: "Response bytes written."}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_malformed_requests_total",
			Help: "Connections closed for a malformed, oversized or unsupported request."}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_authentication_failures_total",
			Help: "Connections closed for a failed SASL authentication (wrong password, unknown user or mechanism)."}),
		authorizationFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_authorization_failures_total",
			Help: "Operations refused by the authorizer (ACLs), counted per resource refused."}),
		producedRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_produced_records_total", Help: "Records appended."}),
		producedBytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_produced_bytes_total", Help: "Record batch bytes appended."}),
		fetchedBytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_fetched_bytes_total", Help: "Record batch bytes served by Fetch."}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_broker_produce_errors_total",
			Help: "Produce partitions answered with an error, by error."}, []string{"error"}),
		retentionDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_retention_deleted_segments_total", Help: "Segments deleted by retention."}),
		compactedRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_cleaner_removed_records_total", Help: "Records removed by the log cleaner from compacted topics."}),
		partitions:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_partitions", Help: "Partitions hosted."}),
		fetchWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_fetch_waiting",
			Help: "Fetch requests long-polling for data right now."}),
		throttledConns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_quota_throttled_connections",
			Help: "Connections muted right now for being over a client quota."}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_broker_connections_refused_total",
			Help: "Connections closed on accept, by reason: max_connections_per_ip (closed at once), ip_connection_rate (over the ip's connection_creation_rate quota: held unread for the throttle time, then closed)."}, []string{"reason"}),
		acceptDelayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_broker_connection_accepts_delayed_total",
			Help: "Accepted connections whose acceptor waited before serving them, by reason: max_connections (until one closed), max_connection_creation_rate (the throttle time)."}, []string{"reason"}),
		acceptBlockedNow: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_acceptors_blocked",
			Help: "Listener acceptors waiting right now for a connection slot or the broker-wide connection creation rate."}),
		acceptBlocked: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_acceptor_blocked_seconds_total",
			Help: "Time acceptors spent waiting for a connection slot or the connection creation rate (Kafka's AcceptorBlockedPercent)."}),
	}
	m.collectors = []prometheus.Collector{groupCollector{b}, m.requests, m.latency, m.connections, m.bytesIn, m.bytesOut, m.malformed, m.authFailures, m.authorizationFailures,
		m.producedRecords, m.producedBytes, m.fetchedBytes, m.produceErrors, m.retentionDeleted, m.compactedRecords, m.partitions, m.fetchWaiting,
		m.throttledConns, m.connsRefused, m.acceptDelayed, m.acceptBlockedNow, m.acceptBlocked, b.quotas.Collector()}
	m.collectors = append(m.collectors, b.fetchSessions.collectors()...)
	if reg != nil {
		for _, c := range m.collectors {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) observe(key int16, d time.Duration) {
	var am *apiMetrics
	cached := key >= 0 && int(key) < len(m.apis)
	if cached {
		am = m.apis[key].Load()
	}
	if am == nil {
		name := kmsg.NameForKey(key)
		am = &apiMetrics{requests: m.requests.WithLabelValues(name), latency: m.latency.WithLabelValues(name)}
		if cached {
			m.apis[key].Store(am) // a racing store keeps the same children
		}
	}
	am.requests.Inc()
	am.latency.Observe(d.Seconds())
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

var (
	groupLagDesc = prometheus.NewDesc("tagpipe_broker_group_lag_records",
		"Records between a group's committed offset and the partition's end.", []string{"group", "topic", "partition"}, nil)
	groupMembersDesc = prometheus.NewDesc("tagpipe_broker_group_members", "Members of a consumer group.", []string{"group"}, nil)
	groupStateDesc   = prometheus.NewDesc("tagpipe_broker_group_state",
		"1 for the consumer group's current state.", []string{"group", "state"}, nil)
)

// groupCollector reports consumer-group state and lag at scrape time.
type groupCollector struct{ b *Broker }

func (groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- groupLagDesc
	ch <- groupMembersDesc
	ch <- groupStateDesc
}

func (gc groupCollector) Collect(ch chan<- prometheus.Metric) {
	b := gc.b
	if b.groups == nil {
		return
	}
	for _, gi := range b.groups.List() {
		ch <- prometheus.MustNewConstMetric(groupMembersDesc, prometheus.GaugeValue, float64(len(gi.Members)), gi.Name)
		ch <- prometheus.MustNewConstMetric(groupStateDesc, prometheus.GaugeValue, 1, gi.Name, gi.State)
		for topic, parts := range b.groups.Fetch(gi.Name) {
			for p, o := range parts {
				part := b.partition(topic, p)
				if part == nil {
					continue
				}
				lag := max(part.log.HighWatermark()-o.Offset, 0)
				ch <- prometheus.MustNewConstMetric(groupLagDesc, prometheus.GaugeValue, float64(lag), gi.Name, topic, strconv.Itoa(int(p)))
			}
		}
	}
}
