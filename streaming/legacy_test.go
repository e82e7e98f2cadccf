package streaming

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Message sets of magic v0 and v1 (Kafka before 0.11), as old brokers still serve them
// for topics written in an old message format: a small writer (legacyMsg), a log of
// them served by a kfake cluster whose Fetch answers are taken over (testLog), and
// reads through the source's whole Fetch path against it.

// legacyMsg is a message of magic 0 or 1 to encode. A compressed one (codec set) holds
// inner, as the value, compressed.
type legacyMsg struct {
	offset     int64
	magic      byte
	codec      byte // 1 gzip, 2 snappy (xerial framed, as Java producers wrote it), 3 lz4; rawSnappy: snappy without framing
	logAppend  bool // v1: timestamp type log-append time (attributes bit 3)
	ts         int64
	key, value []byte
	inner      []legacyMsg
	rawSnappy  bool
}

const (
	legacyGzip, legacySnappy, legacyLz4 = 1, 2, 3
	legacyT0                            = 1_500_000_000_000 // a v1 create time (ms)
)

// encode lays m out as in a log segment: offset, size, then the message (CRC-32 of the
// rest, magic, attributes, v1 timestamp, key, value).
func (m legacyMsg) encode(t testing.TB) []byte {
	attrs := m.codec
	if m.logAppend {
		attrs |= 0x08
	}
	value := m.value
	if m.codec != 0 {
		var set []byte
		for _, in := range m.inner {
			set = append(set, in.encode(t)...)
		}
		value = legacyCompress(t, m.codec, m.rawSnappy, set)
	}
	body := []byte{m.magic, attrs}
	if m.magic == 1 {
		body = binary.BigEndian.AppendUint64(body, uint64(m.ts))
	}
	body = appendLegacyField(body, m.key)
	body = appendLegacyField(body, value)
	out := binary.BigEndian.AppendUint64(nil, uint64(m.offset))
	out = binary.BigEndian.AppendUint32(out, uint32(4+len(body)))
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	return append(out, body...)
}

func appendLegacyField(b, v []byte) []byte {
	if v == nil {
		return binary.BigEndian.AppendUint32(b, 0xffffffff)
	}
	return append(binary.BigEndian.AppendUint32(b, uint32(len(v))), v...)
}

func legacyCompress(t testing.TB, codec byte, rawSnappy bool, b []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case legacyGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case legacySnappy:
		if rawSnappy {
			return snappy.Encode(nil, b)
		}
		// xerial framing: magic, version 1, compatible version 1, then length-prefixed
		// blocks (two here, to read more than one).
		buf.Write([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1})
		for len(b) > 0 {
			n := min(len(b), max(len(b)/2, 8))
			block := snappy.Encode(nil, b[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
			b = b[n:]
		}
	case legacyLz4:
		w := lz4.NewWriter(&buf)
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// v0 and v1 are uncompressed messages at offset.
func v0(offset int64, key, value []byte) legacyMsg {
	return legacyMsg{offset: offset, key: key, value: value}
}

func v1(offset, ts int64, key, value []byte) legacyMsg {
	return legacyMsg{offset: offset, magic: 1, ts: ts, key: key, value: value}
}

// wrapped is a compressed message of magic holding inner, at wrapper offset offset
// (the last inner message's absolute offset, as brokers set it).
func wrapped(magic, codec byte, offset int64, inner ...legacyMsg) legacyMsg {
	for i := range inner {
		inner[i].magic = magic
	}
	return legacyMsg{offset: offset, magic: magic, codec: codec, inner: inner}
}

func bs(s string) []byte { return []byte(s) }

// testLogEntry is one message (or v2 batch) of a log: its bytes and its last offset.
type testLogEntry struct {
	raw  []byte
	last int64
}

// testLog is one partition's log of testLogEntry, served to Fetch requests as a
// broker serves its segments: from the message holding the fetch offset (a
// compressed message whole, records before the offset included), up to the request's
// bytes, the last message cut where the bytes end. With kip74 (Fetch v3+ brokers) a
// first message larger than the bytes comes whole; without, it is cut too.
type testLog struct {
	entries []testLogEntry
	kip74   bool

	mu      sync.Mutex
	fetches int
	cut     int // responses that end inside a message
}

func (l *testLog) add(last int64, raw []byte) {
	l.entries = append(l.entries, testLogEntry{raw, last})
}

func (l *testLog) end() int64 { return l.entries[len(l.entries)-1].last + 1 }

// read is the records field of a fetch at offset of up to max bytes.
func (l *testLog) read(offset int64, max int) []byte {
	var out []byte
	for _, e := range l.entries {
		if e.last < offset {
			continue
		}
		if len(out)+len(e.raw) > max {
			if len(out) == 0 && l.kip74 {
				return e.raw
			}
			l.cut++
			return append(out, e.raw[:max-len(out)]...)
		}
		out = append(out, e.raw...)
	}
	return out
}

// serve runs a kfake cluster with topic "old" (one partition) whose Fetch requests l
// answers, and returns its address.
func (l *testLog) serve(t testing.TB) []string {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "old"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.ControlKey(kmsg.Fetch.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.fetches++
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.HighWatermark, sp.LastStableOffset = l.end(), l.end()
				switch {
				case rt.Topic != "old" || rp.Partition != 0:
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case rp.FetchOffset > l.end():
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				default:
					sp.RecordBatches = l.read(rp.FetchOffset, int(min(rp.PartitionMaxBytes, req.MaxBytes)))
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return c.ListenAddrs()
}

// oldLog is a partition written over the years: v0 messages, then v1 (after Kafka
// 0.10), then v2 batches (after 0.11), plain and compressed with every legacy codec,
// offsets 0-22 (17 and 19 removed by compaction).
func oldLog(t testing.TB) *testLog {
	l := &testLog{kip74: true}
	for _, m := range []legacyMsg{
		v0(0, bs("k0"), bs("a")),
		v0(1, bs("k1"), nil), // a tombstone
		// v0 wrapped: the inner offsets are absolute (the broker rewrote them).
		wrapped(0, legacyGzip, 4, v0(2, nil, bs("b")), v0(3, bs("k3"), bs("c")), v0(4, nil, bs("d"))),
		wrapped(0, legacySnappy, 6, v0(5, nil, bs("e")), v0(6, nil, bs(""))),
		v1(7, legacyT0+7, bs("k7"), bs("f")),
		v1(8, -1, nil, bs("g")), // no timestamp
		// v1 wrapped: inner offsets relative, the wrapper's is the last one's absolute.
		wrapped(1, legacyGzip, 11, v1(0, legacyT0+9, bs("k9"), bs("h")), v1(1, legacyT0+10, nil, bs("i")), v1(2, legacyT0+11, nil, nil)),
		wrapped(1, legacyLz4, 13, v1(0, legacyT0+12, nil, bs("j")), v1(1, legacyT0+13, bs("k13"), bs("k"))),
		// Log-append time: the inner messages take the wrapper's timestamp.
		func() legacyMsg {
			m := wrapped(1, legacySnappy, 16, v1(0, 1, nil, bs("l")), v1(1, 2, nil, bs("m")), v1(2, 3, nil, bs("n")))
			m.logAppend, m.ts = true, legacyT0+1000
			return m
		}(),
		// Compacted: relative offsets 0 and 2 (19 is gone), raw snappy.
		func() legacyMsg {
			m := wrapped(1, legacySnappy, 20, v1(0, legacyT0+18, bs("k18"), bs("o")), v1(2, legacyT0+20, bs("k20"), bs("p")))
			m.rawSnappy = true
			return m
		}(),
	} {
		last := m.offset
		l.add(last, m.encode(t))
	}
	for _, b := range []testBatch{data(-1, 21, false, "q", "r")} {
		l.add(b.base+int64(len(b.recs))-1, b.encode(t))
	}
	return l
}

// oldLogWant is oldLog's records as a Kafka consumer reads them (offset key=value
// time; v0 records have no timestamp).
var oldLogWant = []string{
	"0 k0=a -", "1 k1=<nil> -", "2 <nil>=b -", "3 k3=c -", "4 <nil>=d -", "5 <nil>=e -", "6 <nil>= -",
	"7 k7=f +7", "8 <nil>=g -", "9 k9=h +9", "10 <nil>=i +10", "11 <nil>=<nil> +11", "12 <nil>=j +12", "13 k13=k +13",
	"14 <nil>=l +1000", "15 <nil>=m +1000", "16 <nil>=n +1000", "18 k18=o +18", "20 k20=p +20",
	"21 <nil>=q @", "22 <nil>=r @",
}

// describeRecords renders records as oldLogWant does: times as +ms after legacyT0, @ for
// the v2 batch's time (batches_test's data), - for none.
func describeRecords(recs []Record) []string {
	field := func(b []byte) string {
		if b == nil {
			return "<nil>"
		}
		return string(b)
	}
	var out []string
	for _, r := range recs {
		tm := "-"
		switch ms := r.Time.UnixMilli(); {
		case r.Time.IsZero():
		case ms >= 1_700_000_000_000:
			tm = "@"
		default:
			tm = fmt.Sprintf("+%d", ms-legacyT0)
		}
		out = append(out, fmt.Sprintf("%d %s=%s %s", r.Offset, field(r.Key), field(r.Value), tm))
	}
	return out
}

// wantBetween is the lines of want for offsets in [from, until).
func wantBetween(want []string, from, until int64) []string {
	var out []string
	for _, w := range want {
		var off int64
		fmt.Sscan(w, &off)
		if off >= from && off < until {
			out = append(out, w)
		}
	}
	return out
}

// oldSource is a source of "old" at addrs whose fetches take at most fetchMax bytes.
func oldSource(t *testing.T, addrs []string, fetchMax int64) *source {
	s := newSource(addrs, nil, newSubscription([]string{"old"}, nil), "", "legacy-test")
	t.Cleanup(s.close)
	s.fetchMaxBytes = fetchMax
	return s
}

// readOld reads [from, until) of "old" through s's range reader.
func readOld(t *testing.T, s *source, from, until int64) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := s.read(ctx, Ranges{{"old", 0, from, until}}, nil)
	if err != nil {
		t.Fatalf("read [%d, %d) with fetches of %d bytes: %v", from, until, s.fetchMaxBytes, err)
	}
	return recs
}

// A whole old log reads as a Kafka consumer reads it: v0 wrapped offsets absolute, v1
// relative to the wrapper's (compaction gaps kept), log-append time from the wrapper,
// no timestamp for v0, null keys and values kept apart from empty ones, and the v2
// batches after them.
func TestLegacyRead(t *testing.T) {
	l := oldLog(t)
	addrs := l.serve(t)
	got := describeRecords(readOld(t, oldSource(t, addrs, 8<<20), 0, l.end()))
	if g, w := strings.Join(got, "\n"), strings.Join(oldLogWant, "\n"); g != w {
		t.Fatalf("read\n%s\nwant\n%s", g, w)
	}
}

// Every range of the old log reads the records in it: a fetch at an offset inside a
// compressed message gets the whole message, and the records before the offset are
// skipped; a range ending inside one stops there. The records of the first read stay
// as read while the later ones reuse its response buffer.
func TestLegacyReadRanges(t *testing.T) {
	l := oldLog(t)
	s := oldSource(t, l.serve(t), 8<<20)
	first := readOld(t, s, 0, l.end())
	for from := int64(0); from < l.end(); from++ {
		for _, until := range []int64{from + 1, from + 2, l.end()} {
			until = min(until, l.end())
			got := describeRecords(readOld(t, s, from, until))
			if g, w := strings.Join(got, " | "), strings.Join(wantBetween(oldLogWant, from, until), " | "); g != w {
				t.Fatalf("[%d, %d): read %s\nwant %s", from, until, g, w)
			}
		}
	}
	if g, w := strings.Join(describeRecords(first), " | "), strings.Join(oldLogWant, " | "); g != w {
		t.Fatalf("the first read's records changed: %s", g)
	}
}

// Responses cut at every size (the last message partial, as a broker fills a fetch
// up to its bytes) read the same records: the walk stops before the partial message
// and the next fetch starts there.
func TestLegacyReadPartialMessages(t *testing.T) {
	l := oldLog(t)
	addrs := l.serve(t)
	var total int
	for _, e := range l.entries {
		total = max(total, len(e.raw))
	}
	for fetchMax := int64(1); fetchMax <= int64(total)*3; fetchMax += 5 {
		got := describeRecords(readOld(t, oldSource(t, addrs, fetchMax), 0, l.end()))
		if g, w := strings.Join(got, " | "), strings.Join(oldLogWant, " | "); g != w {
			t.Fatalf("fetches of %d bytes: read %s\nwant %s", fetchMax, g, w)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut == 0 {
		t.Fatal("no response ended inside a message")
	}
}

// A broker before KIP-74 cuts even a first message larger than the fetch's bytes: the
// reader asks again for more, up to its fetch.max.bytes.
func TestLegacyReadGrowsFetch(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 200<<10)
	l := &testLog{}
	l.add(0, v1(0, legacyT0, nil, bs("small")).encode(t))
	l.add(1, v1(1, legacyT0+1, nil, big).encode(t))
	l.add(2, v0(2, nil, bs("after")).encode(t))
	addrs := l.serve(t)

	s := oldSource(t, addrs, 1<<20)
	s.avgRecordBytes.Store(10) // fetches sized for small records: 64 KiB
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := s.read(ctx, Ranges{{"old", 0, 0, 3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || !bytes.Equal(recs[1].Value, big) || string(recs[2].Value) != "after" {
		t.Fatalf("read %d records: %.40q", len(recs), describeRecords(recs))
	}

	// Past fetch.max.bytes, it fails and says why.
	s.fetchMaxBytes = 100 << 10
	s.avgRecordBytes.Store(10)
	if _, err := s.read(ctx, Ranges{{"old", 0, 1, 3}}, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a message larger than fetch.max.bytes: %v", err)
	}
}

// Broken messages fail the walk and say what is wrong.
func TestLegacyWalkErrors(t *testing.T) {
	good := v1(0, legacyT0, nil, bs("a")).encode(t)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	// recrc makes m's CRC right again after an edit.
	recrc := func(m []byte) []byte {
		binary.BigEndian.PutUint32(m[12:], crc32.ChecksumIEEE(m[16:]))
		return m
	}
	shortSize := bytes.Clone(good)
	binary.BigEndian.PutUint32(shortSize[8:], 10)
	longValue := bytes.Clone(good)
	binary.BigEndian.PutUint32(longValue[len(longValue)-5:], 100)
	nullWrapper := recrc(append(bytes.Clone(good[:17]), legacyGzip, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	binary.BigEndian.PutUint32(nullWrapper[8:], uint32(len(nullWrapper)-12))
	nested := wrapped(1, legacyGzip, 1, wrapped(1, legacySnappy, 0, v1(0, 0, nil, bs("x"))))
	zstdWrapper := bytes.Clone(good)
	zstdWrapper[17] = 4
	below := wrapped(1, legacyGzip, 1, v1(0, 0, nil, bs("a")), v1(1, 0, nil, bs("b")), v1(2, 0, nil, bs("c")))
	// A wrapper whose inner message's value has a byte flipped (the wrapper's CRC right).
	set := v0(0, nil, bs("a")).encode(t)
	set[len(set)-1] ^= 1
	body := append([]byte{0, legacyGzip}, appendLegacyField(appendLegacyField(nil, nil), legacyCompress(t, legacyGzip, false, set))...)
	badInner := binary.BigEndian.AppendUint32(make([]byte, 8), uint32(4+len(body)))
	badInner = append(binary.BigEndian.AppendUint32(badInner, crc32.ChecksumIEEE(body)), body...)
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"bad CRC", badCRC, "CRC mismatch"},
		{"size below the header", shortSize, "below the header"},
		{"value past the message", recrc(longValue), "value: field of 100 bytes"},
		{"null compressed value", nullWrapper, "null value"},
		{"nested compression", nested.encode(t), "compressed inside a compressed message"},
		{"zstd", recrc(zstdWrapper), "compression codec 4"},
		{"wrapper below its last inner offset", below.encode(t), "below its last inner offset"},
		{"bad inner CRC", badInner, "inner message 0: CRC mismatch"},
		{"no inner messages", wrapped(1, legacyGzip, 0).encode(t), "no inner messages"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := batchWalk{r: OffsetRange{"t", 0, 0, 100}}
			err := w.add(c.raw, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one with %q", err, c.want)
			}
		})
	}
}

// legacySeeds are old message sets for the walker's fuzz target.
func legacySeeds(t testing.TB) [][]byte {
	l := oldLog(t)
	whole := l.read(0, 1<<30)
	lat := wrapped(1, legacySnappy, 12, v1(0, 1, bs("k"), bs("a")), v1(2, 2, nil, nil))
	lat.logAppend, lat.ts = true, legacyT0
	return [][]byte{
		whole,
		whole[:len(whole)/2],
		l.entries[2].raw, // v0 gzip
		lat.encode(t),
		wrapped(1, legacyLz4, 3, v1(0, legacyT0, nil, bs("x")), v1(1, legacyT0, bs("y"), bs(""))).encode(t),
		v0(5, nil, nil).encode(t),
		make([]byte, 12+legacyMinSizeV1),
	}
}
