package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsExport(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	src := m.Component("a1", "source", "r1", "spooldir")
	src.Add("received", 3)
	src.Add("bad_input", 1)
	ch := m.Component("a1", "channel", "c1", "file")
	ch.Gauges = func() map[string]float64 { return map[string]float64{"events": 2} }
	m.Observe("a1", "k1", 3*time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := mm.GetCounter().GetValue() + mm.GetGauge().GetValue() + float64(mm.GetHistogram().GetSampleCount())
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	for k, v := range map[string]float64{
		"tagpipe_ingest_source_received_total{agent=a1,component=r1,type=spooldir}":  3,
		"tagpipe_ingest_source_bad_input_total{agent=a1,component=r1,type=spooldir}": 1,
		"tagpipe_ingest_channel_events{agent=a1,component=c1,type=file}":             2,
		"tagpipe_ingest_sink_batch_seconds{agent=a1,component=k1}":                   1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (have %v)", k, got[k], v, got)
		}
	}
	snap := m.Snapshot()
	if len(snap) != 2 || snap[0].Kind != "channel" || snap[1].Counters["received"] != 3 {
		t.Fatalf("snapshot %+v", snap)
	}
}
