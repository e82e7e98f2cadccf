package quota

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func set(e Entity, t Type, v float64) Alteration {
	return Alteration{Entity: e, Set: map[Type]float64{t: v}}
}

// Kafka's precedence (ClientQuotaManager's doc): the most specific entity that has a
// quota of the type wins, and the metric tags say who shares the rate.
func TestResolvePrecedence(t *testing.T) {
	u, c := N("alice"), N("app")
	d := DefaultName
	all := []struct {
		e Entity
		v float64
	}{
		{Entity{User: u, ClientID: c}, 1}, {Entity{User: u, ClientID: d}, 2}, {Entity{User: u}, 3}, {Entity{User: d, ClientID: c}, 4},
		{Entity{User: d, ClientID: d}, 5}, {Entity{User: d}, 6}, {Entity{ClientID: c}, 7}, {Entity{ClientID: d}, 8},
	}
	both, userOnly, clientOnly := Tags{User: "alice", ClientID: "app"}, Tags{User: "alice"}, Tags{ClientID: "app"}
	wantTags := []Tags{both, both, userOnly, both, both, userOnly, clientOnly, clientOnly}
	// With entities i.. set, entity i applies to alice/app.
	for i := range all {
		s := open(t)
		var alts []Alteration
		for _, q := range all[i:] {
			alts = append(alts, set(q.e, Produce, q.v))
		}
		if err := s.Alter(alts); err != nil {
			t.Fatal(err)
		}
		e, tags, limit, ok := s.Load().Resolve(Produce, "alice", "app")
		if !ok || e != all[i].e || limit != all[i].v || tags != wantTags[i] {
			t.Errorf("from %s on: resolved %s %+v %v %v, want %s %+v %v", all[i].e, e, tags, limit, ok, all[i].e, wantTags[i], all[i].v)
		}
		// Other users and clients fall through to the defaults only.
		e, _, _, ok = s.Load().Resolve(Produce, "bob", "other")
		var wantOther Entity
		for _, q := range all[i:] {
			if q.e.User.Kind != Named && q.e.ClientID.Kind != Named {
				wantOther = q.e
				break
			}
		}
		if ok != (wantOther != Entity{}) || ok && e != wantOther {
			t.Errorf("from %s on: bob/other resolved %s %v, want %s", all[i].e, e, ok, wantOther)
		}
		// Types resolve on their own.
		if _, _, _, ok := s.Load().Resolve(Fetch, "alice", "app"); ok {
			t.Errorf("a fetch quota resolved where only produce quotas are set")
		}
	}
}

// Kafka's QuotaUtilsTest numbers: a rate of 100 against a quota of 50 measured over 2
// whole windows (of 3 samples) of 1 s is throttled 2 s.
func TestRateThrottleAsKafka(t *testing.T) {
	r := newRate(3, int64(time.Second))
	now := int64(10 * time.Second)
	r.record(200, now)
	rate, ns := r.throttle(50, now)
	// The window counts as 2 full samples: 200 / 2 s = 100/s, (100-50)/50 × 2 s = 2 s.
	if rate != 100 || ns != int64(2*time.Second) {
		t.Fatalf("rate %v throttle %v, want 100 and 2s", rate, time.Duration(ns))
	}
	if _, ns := r.throttle(200, now); ns != 0 {
		t.Fatalf("within quota: throttle %v", time.Duration(ns))
	}
	// Old samples expire after samples × window.
	if got := r.measure(now + int64(3*time.Second)); got != 0 {
		t.Fatalf("after the whole span: rate %v, want 0", got)
	}
}

// A sustained client is measured over the real span once it exceeds samples-1 windows.
func TestRateWindowSpan(t *testing.T) {
	r := newRate(11, int64(time.Second))
	start := int64(time.Hour)
	for i := range 30 { // 100 per 100 ms for 3 s = 1000/s
		r.record(100, start+int64(i)*int64(100*time.Millisecond))
	}
	now := start + int64(2900*time.Millisecond)
	if got, want := r.measure(now), 3000/10.9; got != want {
		// 3000 recorded over 2.9 s, of which 2 whole windows: 8 more are added (Kafka's
		// minimum of samples-1 whole windows)
		t.Fatalf("rate after 2.9 s: %v, want %v", got, want)
	}
	for i := 30; i < 200; i++ {
		r.record(100, start+int64(i)*int64(100*time.Millisecond))
	}
	now = start + int64(19900*time.Millisecond)
	if got := r.measure(now); got < 950 || got > 1050 {
		t.Fatalf("rate after 20 s: %v, want ~1000", got)
	}
}

// quot divides at run time, as the rate does (a constant expression is exact, then
// rounded once, and can differ in the last bit).
func quot(a, b float64) float64 { return a / b }

// Kafka 3.8's Rate (KAFKA PR 15889): a sample that began before the span but has a
// record inside it still counts, and the span starts at its start; it is dropped once
// its last record is a whole span old.
func TestRateKeepsOverlappingSample(t *testing.T) {
	r := newRate(2, int64(time.Second))
	at := func(ms int64) int64 { return int64(time.Hour) + ms*int64(time.Millisecond) }
	r.record(100, at(0))
	r.record(100, at(900)) // the same sample: it began at 0
	r.record(100, at(1500))
	// At 2.5 s the first sample began 2.5 s ago (more than the 2 s span) but its last
	// record is 1.6 s old: 300 over 2.5 s. (Dropped by its start, it was 100 over 1 s.)
	if got := r.measure(at(2500)); got != 120 {
		t.Fatalf("rate at 2.5 s: %v, want 120", got)
	}
	// At 2.9 s its last record is 2 s old: gone; 100 since 1.5 s, over 1.4 s.
	if got, want := r.measure(at(2900)), quot(100, 1.4); got != want {
		t.Fatalf("rate at 2.9 s: %v, want %v", got, want)
	}
	// Continuous records keep n+1 samples: one per window for 10 s, 100 each.
	r = newRate(2, int64(time.Second))
	for i := range int64(10) {
		r.record(100, at(i*1000+500))
	}
	if len(r.samples) != 3 {
		t.Fatalf("%d samples kept, want n+1 = 3", len(r.samples))
	}
	// At 10.4 s: the samples of 8.5 and 9.5 s (the one of 7.5 s ended 2.9 s ago).
	if got, want := r.measure(at(10400)), quot(200, 1.9); got != want {
		t.Fatalf("rate at 10.4 s: %v, want %v", got, want)
	}
}

func TestManagerRecord(t *testing.T) {
	dir := t.TempDir()
	clock := time.Unix(1000, 0)
	m := NewManager(Options{Now: func() time.Time { return clock }})
	if m.Active() {
		t.Fatal("active before Open")
	}
	if err := m.Open(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if m.Active() || m.Record(Produce, "u", "c", 1e9, clock) != 0 {
		t.Fatal("no quota: no throttle")
	}
	if err := m.Store().Alter([]Alteration{set(Entity{ClientID: DefaultName}, Produce, 1000)}); err != nil {
		t.Fatal(err)
	}
	// 10 windows' worth passes (the burst of a new client), more is throttled.
	if d := m.Record(Produce, "u", "c", 10000, clock); d != 0 {
		t.Fatalf("burst of 10 windows' quota throttled %v", d)
	}
	// 20000 over 10 s is 2000/s: (2000-1000)/1000 × 10 s.
	if d := m.Record(Produce, "u", "c", 10000, clock); d != 10*time.Second {
		t.Fatalf("throttle %v, want 10s", d)
	}
	// Another client id has its own default rate.
	if d := m.Record(Produce, "u", "other", 5000, clock); d != 0 {
		t.Fatalf("other client throttled %v", d)
	}
	if st, ok := m.Stat(Produce, Tags{ClientID: "c"}); !ok || st.Total != 20000 || st.Throttled != 1 || st.Limit != 1000 || st.Rate != 2000 {
		t.Fatalf("stat %+v %v", st, ok)
	}
	if max, ok := m.MaxValueInWindow(Produce, "u", "c"); !ok || max != 10000 {
		t.Fatalf("max in window %v %v", max, ok)
	}
	m.Unrecord(Produce, "u", "c", 10000, clock)
	if d := m.Record(Produce, "u", "c", 0, clock); d != 0 {
		t.Fatalf("after unrecord throttled %v", d)
	}
	// Request throttles are bounded by one window.
	if err := m.Store().Alter([]Alteration{set(Entity{ClientID: DefaultName}, Request, 1)}); err != nil {
		t.Fatal(err)
	}
	if d := m.Record(Request, "u", "c", 1000, clock); d != time.Second {
		t.Fatalf("request throttle %v, want the 1 s bound", d)
	}
	// Removing the quota stops throttling at once.
	if err := m.Store().Alter([]Alteration{{Entity: Entity{ClientID: DefaultName}, Remove: []Type{Produce, Request}}}); err != nil {
		t.Fatal(err)
	}
	if m.Active() || m.Record(Produce, "u", "c", 1e9, clock) != 0 {
		t.Fatal("throttled after the quota was removed")
	}
}

func TestStorePersistsAndDescribes(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	alice, app := N("alice"), N("app")
	ents := []Entity{
		{User: alice}, {User: alice, ClientID: DefaultName}, {User: alice, ClientID: app},
		{User: DefaultName}, {ClientID: app}, {ClientID: DefaultName},
	}
	var alts []Alteration
	for i, e := range ents {
		alts = append(alts, Alteration{Entity: e, Set: map[Type]float64{Produce: float64(1000 * (i + 1)), Request: 12.5}})
	}
	if err := s.Alter(alts); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Load().Describe(Filter{}), s2.Load().Describe(Filter{})) || len(s2.Load().Describe(Filter{})) != len(ents) {
		t.Fatalf("reopened: %v, want %v", s2.Load().Describe(Filter{}), s.Load().Describe(Filter{}))
	}
	cases := []struct {
		name string
		f    Filter
		want []Entity
	}{
		{"all", Filter{}, []Entity{ents[5], ents[4], ents[3], ents[0], ents[1], ents[2]}},
		{"strict nothing", Filter{Strict: true}, nil},
		{"user alice", Filter{User: MatchExact, UserName: "alice"}, []Entity{ents[0], ents[1], ents[2]}},
		{"user alice strict", Filter{User: MatchExact, UserName: "alice", Strict: true}, []Entity{ents[0]}},
		{"default user", Filter{User: MatchDefault}, []Entity{ents[3]}},
		{"any user strict", Filter{User: MatchAny, Strict: true}, []Entity{ents[3], ents[0]}},
		{"any client", Filter{ClientID: MatchAny}, []Entity{ents[5], ents[4], ents[1], ents[2]}},
		{"alice default client", Filter{User: MatchExact, UserName: "alice", ClientID: MatchDefault}, []Entity{ents[1]}},
		{"client app strict", Filter{ClientID: MatchExact, ClientIDName: "app", Strict: true}, []Entity{ents[4]}},
	}
	for _, tc := range cases {
		var got []Entity
		for _, eq := range s2.Load().Describe(tc.f) {
			got = append(got, eq.Entity)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Removing every quota of an entity removes it.
	if err := s2.Alter([]Alteration{{Entity: ents[0], Remove: []Type{Produce, Request, Fetch}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.Load().Get(ents[0]); ok {
		t.Fatal("entity without quotas still listed")
	}
	// A failed write changes nothing.
	s2.writeFile = func(string, []byte) error { return os.ErrPermission }
	if err := s2.Alter([]Alteration{{Entity: ents[1], Remove: []Type{Produce, Request}}}); err == nil {
		t.Fatal("failed write reported no error")
	}
	if _, ok := s2.Load().Get(ents[1]); !ok {
		t.Fatal("failed write changed the quotas")
	}
}

// The file format (FORMAT.md) is frozen.
func TestFileFormatFrozen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Alter([]Alteration{
		{Entity: Entity{User: N("alice"), ClientID: DefaultName}, Set: map[Type]float64{Produce: 1048576, Request: 12.5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "quotas": [
    {
      "entity": {
        "client-id": null,
        "user": "alice"
      },
      "values": {
        "producer_byte_rate": 1048576,
        "request_percentage": 12.5
      }
    }
  ]
}
`
	if string(got) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []string{`{"version":2,"quotas":[]}`, `{"version":1,"quotas":[{"entity":{},"values":{"producer_byte_rate":1}}]}`,
		`{"version":1,"quotas":[{"entity":{"user":"a"},"values":{"producer_byte_rate":0}}]}`,
		`{"version":1,"quotas":[{"entity":{"ip":"1.2.3.4"},"values":{"producer_byte_rate":1}}]}`} {
		if _, err := parseFile([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
}

// A throttled fetch's bytes are taken back out at the instant they were recorded at,
// the one clock reading the request's quotas use (Kafka passes one timeMs to the record
// and the unrecord). Unrecord used to read the clock again: with the record in a
// window's last millisecond, the unrecord landed in the next sample, which later
// fetches kept alive after the first had expired: the rate went negative, free bytes
// for the client.
func TestUnrecordAtTheRecordInstant(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := t0
	m := NewManager(Options{Now: func() time.Time { // moves 1 ms per reading
		now := clock
		clock = clock.Add(time.Millisecond)
		return now
	}})
	if err := m.Open(filepath.Join(t.TempDir(), FileName)); err != nil {
		t.Fatal(err)
	}
	if err := m.Store().Alter([]Alteration{set(Entity{ClientID: DefaultName}, Fetch, 1000)}); err != nil {
		t.Fatal(err)
	}
	if d := m.Record(Fetch, "u", "c", 5000, m.Now()); d != 0 { // starts a window at t0
		t.Fatalf("first fetch throttled %v", d)
	}
	clock = t0.Add(999 * time.Millisecond) // the window's last millisecond
	now := m.Now()
	// 15000 over 10.999 s (10 whole windows and this one's 999 ms) against 1000/s:
	// back to the quota when the span is 15 s, in 4.001 s.
	if d := m.Record(Fetch, "u", "c", 10000, now); d != 4001*time.Millisecond {
		t.Fatalf("second fetch throttled %v, want 4.001s", d)
	}
	m.Unrecord(Fetch, "u", "c", 10000, now)
	clock = t0.Add(1500 * time.Millisecond)
	if d := m.Record(Fetch, "u", "c", 100, m.Now()); d != 0 { // a new window at 1.5 s
		t.Fatalf("third fetch throttled %v", d)
	}
	// At 12.2 s the window of t0 has expired (its last record is 11.201 s old): 100
	// since 1.5 s.
	clock = t0.Add(12200 * time.Millisecond)
	if st, _ := m.Stat(Fetch, Tags{ClientID: "c"}); st.Rate != quot(100, 10.7) || st.Total != 5100 {
		t.Fatalf("after the first window expired: rate %v, total %v; want %v and 5100", st.Rate, st.Total, quot(100, 10.7))
	}
}

// ip entities (KIP-612): a named ip's connection_creation_rate applies to its address
// in any spelling, else the default ip's; they are kept in the file with the "ip"
// entity type next to the older entities, and a file written before ip quotas existed
// reads as before.
func TestIPQuotas(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	old := `{"version":1,"quotas":[{"entity":{"user":"alice"},"values":{"producer_byte_rate":1024}}]}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Load().ConnectionRate("10.0.0.1"); ok {
		t.Fatal("an ip quota with none set")
	}
	if err := s.Alter([]Alteration{
		set(Entity{IP: N("0:0:0:0:0:0:0:1")}, ConnectionCreation, 7),
		set(Entity{IP: N("10.0.0.1")}, ConnectionCreation, 5),
	}); err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]float64{"10.0.0.1": 5, "::1": 7, "10.0.0.2": 0} {
		if got, ok := s.Load().ConnectionRate(ip); got != want || ok != (want != 0) {
			t.Errorf("%s: %v %v, want %v", ip, got, ok, want)
		}
	}
	if err := s.Alter([]Alteration{set(Entity{IP: DefaultName}, ConnectionCreation, 3)}); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Load().ConnectionRate("10.0.0.2"); got != 3 || !ok {
		t.Errorf("default ip: %v %v, want 3", got, ok)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, eq := range s2.Load().Describe(Filter{}) {
		got = append(got, eq.Entity.String())
	}
	if want := []string{"/users/alice", "/ips/<default>", "/ips/0:0:0:0:0:0:0:1", "/ips/10.0.0.1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened: %v, want %v", got, want)
	}
	var ips []string
	for _, eq := range s2.Load().Describe(Filter{IP: MatchExact, IPName: "10.0.0.1"}) {
		ips = append(ips, eq.Entity.String())
	}
	if len(ips) != 1 || ips[0] != "/ips/10.0.0.1" {
		t.Fatalf("exact ip: %v", ips)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"ip": "10.0.0.1"`) || !strings.Contains(string(data), `"ip": null`) {
		t.Fatalf("file:\n%s", data)
	}
	for _, bad := range []string{
		`{"version":1,"quotas":[{"entity":{"ip":"host.example"},"values":{"connection_creation_rate":1}}]}`,
		`{"version":1,"quotas":[{"entity":{"ip":"10.0.0.1","user":"a"},"values":{"connection_creation_rate":1}}]}`,
		`{"version":1,"quotas":[{"entity":{"user":"a"},"values":{"connection_creation_rate":1}}]}`,
	} {
		if _, err := parseFile([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
}

// Kafka's numbers for an ip's connection_creation_rate (11 windows of 1 s, one
// instant): a new ip is measured over 10 s, so 10 × rate connections pass; the next
// is over, taken back out and throttled (bounded by one window); the broker-wide rate
// keeps its connections and throttles the same way.
func TestConnectionRateThrottle(t *testing.T) {
	now := time.Unix(5000, 0)
	m := NewManager(Options{Now: func() time.Time { return now }})
	if err := m.Open(filepath.Join(t.TempDir(), FileName)); err != nil {
		t.Fatal(err)
	}
	if d := m.RecordIPConnection("10.0.0.1", now); d != 0 {
		t.Fatalf("no quota: throttled %v", d)
	}
	if _, ok := m.Stat(ConnectionCreation, Tags{IP: "10.0.0.1"}); ok {
		t.Fatal("a rate kept for an ip without a quota")
	}
	if err := m.Store().Alter([]Alteration{set(Entity{IP: N("10.0.0.1")}, ConnectionCreation, 2)}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if d := m.RecordIPConnection("10.0.0.1", now); d != 0 {
			t.Fatalf("connection %d throttled %v", i+1, d)
		}
	}
	// 21 over 10 s against 2/s: (2.1-2)/2 × 10 s = 500 ms.
	if d := m.RecordIPConnection("10.0.0.1", now); d != 500*time.Millisecond {
		t.Fatalf("21st throttled %v, want 500ms", d)
	}
	if st, _ := m.Stat(ConnectionCreation, Tags{IP: "10.0.0.1"}); st.Total != 20 || st.Rate != 2 || st.Throttled != 1 {
		t.Fatalf("after the throttle: %+v", st)
	}
	// A big overshoot is bounded by one window.
	for range 30 {
		m.RecordBrokerConnection(1, now)
	}
	if d := m.RecordBrokerConnection(1, now); d != time.Second {
		t.Fatalf("broker-wide: throttled %v, want the 1 s bound", d)
	}
	m.UnrecordBrokerConnection(now)
	if st, _ := m.Stat(ConnectionCreation, Tags{}); st.Total != 30 {
		t.Fatalf("broker-wide total %v, want 30", st.Total)
	}
}
